"""Per-chunk simulation of behaviour: purchase and browse processes, orders, items, sessions.

Also the customer re-loads (stale profile rows), because campaign targeting reads the stale
opt-in before the re-load.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scripts import dirt
from scripts.generate.campaigns import EFFECT_DAYS, UpliftWindows
from scripts.generate.catalogue import (
    CATEGORIES,
    COMPLEMENT_OF,
    COMPLEMENT_PROB,
    EXTRA_QUANTITY,
    Catalogue,
)
from scripts.generate.personas import CITY_SHARES, Attributes, Customers
from scripts.ground_truth import (
    DATA_SECONDS,
    FIRST_ORDER_MEAN_DELAY_DAYS,
    N_WEEKS,
    SECONDS_PER_DAY,
    SECONDS_PER_WEEK,
    seasonality,
    week_bounds,
    weekly_profile,
)

ANON_SESSIONS_PER_CUSTOMER = 6.5
"""Anonymous visitor sessions per simulated customer over the two years."""
ANON_BROWSE_DEPTH = 1.3
EVENT_GAP_SECONDS = 45.0

ORDER_CHANNELS = ("web", "app", "store", "marketplace")
ORDER_CHANNEL_SHARES = (0.32, 0.18, 0.28, 0.22)
ONLINE_CHANNELS = 2
"""The first two order channels come with a web session leading to the order."""
STATUSES = ("completed", "cancelled", "returned")
EVENT_TYPES = ("page_view", "product_view", "add_to_cart", "checkout")


@dataclass(frozen=True)
class Cells:
    """The active customer-weeks of a chunk: where every weekly Poisson process lives.

    Cells are grouped by customer: customer ``i`` owns cells ``run_start[i]`` up to
    ``run_start[i] + n_weeks[i]`` (from the signup week to the last week).
    """

    customer: np.ndarray
    low: np.ndarray
    high: np.ndarray
    profile: np.ndarray
    run_start: np.ndarray
    n_weeks: np.ndarray


def active_cells(customers: Customers) -> Cells:
    starts, ends = week_bounds()
    first_week = customers.created_s // SECONDS_PER_WEEK
    n_weeks = N_WEEKS - first_week
    customer = np.repeat(np.arange(customers.size), n_weeks)
    run_start = np.cumsum(n_weeks) - n_weeks
    week = np.arange(len(customer)) - run_start[customer] + first_week[customer]
    return Cells(
        customer=customer,
        low=np.maximum(starts[week], customers.created_s[customer]),
        high=ends[week],
        profile=weekly_profile(
            week, customers.decline_s[customer], customers.decline_tau_days[customer]
        ),
        run_start=run_start,
        n_weeks=n_weeks,
    )


def arrivals(
    cells: Cells, rate: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Draw the weekly piecewise-constant Poisson process; return (customer, second) per event.

    Equivalent to independent ``Poisson(mean)`` counts per cell, drawn faster: a Poisson total
    per customer, each event placed in a cell with probability proportional to the cell's mean
    and then uniformly within the cell's active seconds.
    """
    mean = rate[cells.customer] * cells.profile * (cells.high - cells.low) / SECONDS_PER_WEEK
    total = np.add.reduceat(mean, cells.run_start)
    count = rng.poisson(total)
    customer = np.repeat(np.arange(len(total)), count)
    cumulative = np.cumsum(mean)
    before = cumulative[cells.run_start] - mean[cells.run_start]
    target = before[customer] + rng.random(len(customer)) * total[customer]
    cell = np.searchsorted(cumulative, target, side="right")
    first = cells.run_start[customer]
    cell = np.clip(cell, first, first + cells.n_weeks[customer] - 1)
    low, high = cells.low[cell], cells.high[cell]
    second = low + np.floor(rng.random(len(cell)) * (high - low)).astype(np.int64)
    return customer, np.minimum(second, high - 1)


@dataclass(frozen=True)
class Orders:
    customer: np.ndarray
    ordered_s: np.ndarray
    status: np.ndarray
    channel: np.ndarray
    order_total: np.ndarray
    discount_total: np.ndarray
    item_start: np.ndarray
    n_items: np.ndarray


@dataclass(frozen=True)
class Items:
    order: np.ndarray
    product: np.ndarray
    quantity: np.ndarray
    unit_price: np.ndarray


_TIME_BITS = 26
assert DATA_SECONDS < 2**_TIME_BITS


def uplift_arrivals(
    customers: Customers, windows: UpliftWindows, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Draw the extra purchases of treated touches; return (customer, second) per order.

    Inside an effect window the purchase rate is ``multiplier`` times the base rate, so the
    extra orders are the same weekly process at ``(multiplier - 1)`` times the base rate,
    piecewise per calendar week (Poisson processes add up).
    """
    starts, ends = week_bounds()
    n_pieces = -(-EFFECT_DAYS * SECONDS_PER_DAY // SECONDS_PER_WEEK) + 1
    window = np.repeat(np.arange(len(windows.customer)), n_pieces)
    week = windows.start_s[window] // SECONDS_PER_WEEK + np.tile(
        np.arange(n_pieces), len(windows.customer)
    )
    in_calendar = week < N_WEEKS
    window, week = window[in_calendar], week[in_calendar]
    low = np.maximum(starts[week], windows.start_s[window])
    high = np.minimum(ends[week], windows.end_s[window])
    overlapping = high > low
    window, week = window[overlapping], week[overlapping]
    low, high = low[overlapping], high[overlapping]
    customer = windows.customer[window]
    profile = weekly_profile(
        week, customers.decline_s[customer], customers.decline_tau_days[customer]
    )
    extra_rate = (windows.multiplier[window] - 1.0) * customers.rate[customer]
    count = rng.poisson(extra_rate * profile * (high - low) / SECONDS_PER_WEEK)
    piece = np.repeat(np.arange(len(count)), count)
    low, high = low[piece], high[piece]
    second = low + np.floor(rng.random(len(piece)) * (high - low)).astype(np.int64)
    return customer[piece], np.minimum(second, high - 1)


def simulate_orders(
    customers: Customers,
    cells: Cells,
    windows: UpliftWindows,
    catalogue: Catalogue,
    rng: np.random.Generator,
) -> tuple[Orders, Items]:
    """Draw a chunk's orders (base process, campaign uplift, first orders) and their items."""
    base_customer, base_second = arrivals(cells, customers.rate, rng)
    uplift_customer, uplift_second = uplift_arrivals(customers, windows, rng)
    customer = np.concatenate([base_customer, uplift_customer])
    second = np.concatenate([base_second, uplift_second])
    has_first = rng.random(customers.size) < customers.first_prob
    delay = rng.exponential(FIRST_ORDER_MEAN_DELAY_DAYS * SECONDS_PER_DAY, customers.size)
    first_s = customers.created_s + np.floor(delay).astype(np.int64)
    first = np.flatnonzero(has_first & (first_s < DATA_SECONDS))
    key = np.concatenate([customer << _TIME_BITS | second, first << _TIME_BITS | first_s[first]])
    key.sort()
    customer, second = key >> _TIME_BITS, key & (2**_TIME_BITS - 1)
    n_orders = len(customer)

    u = rng.random(n_orders)
    cancel_prob = customers.cancel_prob[customer]
    returned = u < cancel_prob + customers.return_prob[customer]
    status = np.where(u < cancel_prob, 1, np.where(returned, 2, 0)).astype(np.int8)
    channel = rng.choice(len(ORDER_CHANNELS), n_orders, p=ORDER_CHANNEL_SHARES).astype(np.int8)

    drawn = 1 + rng.poisson(customers.basket_mean[customer] - 1.0)
    item_order = np.repeat(np.arange(n_orders), drawn)
    basket_lead = np.repeat(np.cumsum(drawn) - drawn, drawn)
    product = sample_products(customers, catalogue, customer[item_order], rng, basket_lead)
    # A product appears once per order: drop repeated draws.
    key = item_order * catalogue.size + product
    key.sort()
    distinct = np.concatenate([[True], key[1:] != key[:-1]])
    key = key[distinct]
    item_order, product = key // catalogue.size, key % catalogue.size
    item_customer = customer[item_order]
    n_items = np.bincount(item_order, minlength=n_orders)
    item_start = np.cumsum(n_items) - n_items

    n = len(item_order)
    quantity = 1 + rng.poisson(np.array(EXTRA_QUANTITY)[catalogue.category[product]])
    on_sale = rng.random(n) < 0.08 + 0.4 * customers.discount_affinity[item_customer]
    markdown = np.where(on_sale, rng.uniform(0.1, 0.4, n), 0.0)
    unit_price = np.round(catalogue.list_price[product] * (1.0 - markdown), 2)
    subtotal = np.bincount(item_order, weights=quantity * unit_price, minlength=n_orders)
    coupon = rng.random(n_orders) < 0.5 * customers.discount_affinity[customer]
    discount = np.round(np.where(coupon, subtotal * rng.uniform(0.05, 0.25, n_orders), 0.0), 2)
    total = np.round(subtotal - discount, 2)
    orders = Orders(customer, second, status, channel, total, discount, item_start, n_items)
    return orders, Items(item_order, product, quantity.astype(np.int32), unit_price)


def sample_products(
    customers: Customers,
    catalogue: Catalogue,
    customer: np.ndarray,
    rng: np.random.Generator,
    basket_lead: np.ndarray | None = None,
) -> np.ndarray:
    """Draw a product per row: category by the customer's preferences, tier by spend level.

    With ``basket_lead`` (per row, the row of the first item in its basket) every other item
    of a basket takes the complement of the first item's category with ``COMPLEMENT_PROB``.
    """
    position = np.searchsorted(
        customers.preference_grid, customer + rng.random(len(customer)), side="right"
    )
    category = np.clip(position - customer * len(CATEGORIES), 0, len(CATEGORIES) - 1)
    if basket_lead is not None:
        follows = basket_lead != np.arange(len(customer))
        swap = np.flatnonzero(follows & (rng.random(len(customer)) < COMPLEMENT_PROB))
        category[swap] = COMPLEMENT_OF[category[basket_lead[swap]]]
    tier = rng.random(len(customer)) < customers.premium_share[customer]
    return catalogue.sample(category * 2 + tier, rng)


@dataclass(frozen=True)
class Events:
    customer: np.ndarray
    session: np.ndarray
    event_type: np.ndarray
    event_s: np.ndarray
    product: np.ndarray
    n_sessions: int


def simulate_events(
    customers: Customers,
    cells: Cells,
    orders: Orders,
    items: Items,
    catalogue: Catalogue,
    rng: np.random.Generator,
) -> Events:
    page_view, product_view, add_to_cart, checkout = range(len(EVENT_TYPES))
    # Sessions leading to online orders: view the first item, add each item, check out.
    online = np.flatnonzero(orders.channel < ONLINE_CHANNELS)
    o_len = orders.n_items[online] + 2

    # Browsing sessions of known customers follow the purchase profile at the browse rate.
    b_customer, b_start = arrivals(cells, customers.browse_rate, rng)
    b_views = rng.poisson(customers.browse_depth[b_customer])
    b_cart = (b_views > 0) & (rng.random(len(b_customer)) < customers.cart_prob[b_customer])

    # Anonymous visitors: seasonal arrivals over the whole calendar.
    starts, ends = week_bounds()
    weight = seasonality() * (ends - starts)
    n_anon = rng.poisson(ANON_SESSIONS_PER_CUSTOMER * customers.size)
    a_week = rng.choice(N_WEEKS, n_anon, p=weight / weight.sum())
    a_offset = np.floor(rng.random(n_anon) * (ends - starts)[a_week]).astype(np.int64)
    a_views = rng.poisson(ANON_BROWSE_DEPTH, n_anon)
    a_cart = (a_views > 0) & (rng.random(n_anon) < 0.05)

    # Sessions are laid out in three blocks (order, browse, anonymous), events session by session.
    n_order_sessions = len(online)
    s_customer = np.concatenate([orders.customer[online], b_customer, np.full(n_anon, -1)])
    s_len = np.concatenate([o_len, 1 + b_views + b_cart, 1 + a_views + a_cart])
    n_sessions = len(s_len)
    first_event = np.cumsum(s_len) - s_len
    last_event = first_event + s_len - 1
    n_events = int(s_len.sum())
    order_end = int(o_len.sum())
    browse_end = order_end + int((1 + b_views + b_cart).sum())
    session = np.repeat(np.arange(n_sessions), s_len)

    event_type = np.full(n_events, product_view, dtype=np.int8)
    event_type[:order_end] = add_to_cart
    event_type[first_event[:n_order_sessions]] = product_view
    event_type[last_event[:n_order_sessions]] = checkout
    event_type[first_event[n_order_sessions:]] = page_view
    carts = last_event[n_order_sessions:][np.concatenate([b_cart, a_cart])]
    event_type[carts] = add_to_cart

    # Products: order sessions view the first item, then add every item; browsing draws views
    # from the customer's preferences (anonymous visitors: uniform over groups), a cart adds
    # the product viewed just before.
    product = np.full(n_events, -1, dtype=np.int64)
    o_first = np.repeat(orders.item_start[online], o_len)
    o_position = np.arange(order_end) - np.repeat(first_event[:n_order_sessions], o_len)
    o_item = o_first + np.clip(o_position - 1, 0, None)
    shop = np.flatnonzero(event_type[:order_end] != checkout)
    product[shop] = items.product[o_item[shop]]
    known = order_end + np.flatnonzero(event_type[order_end:browse_end] == product_view)
    product[known] = sample_products(customers, catalogue, s_customer[session[known]], rng)
    anon = browse_end + np.flatnonzero(event_type[browse_end:] == product_view)
    anon_group = rng.integers(0, 2 * len(CATEGORIES), len(anon))
    product[anon] = catalogue.sample(anon_group, rng)
    product[carts] = product[carts - 1]

    gaps = np.floor(rng.exponential(EVENT_GAP_SECONDS, n_events)).astype(np.int64)
    gaps[first_event] = 0
    elapsed = np.cumsum(gaps)
    offset = elapsed - np.repeat(elapsed[first_event], s_len)
    lead = rng.integers(5, 120, n_order_sessions)
    s_start = np.concatenate(
        [
            orders.ordered_s[online] - lead - offset[last_event[:n_order_sessions]],
            b_start,
            starts[a_week] + a_offset,
        ]
    )
    event_s = np.repeat(s_start, s_len)
    event_s += offset
    # Sessions leading to a first order may start before signup: clamp them to the signup.
    signup = np.repeat(customers.created_s[orders.customer[online]], o_len)
    np.maximum(event_s[:order_end], signup, out=event_s[:order_end])
    np.minimum(event_s, DATA_SECONDS - 1, out=event_s)
    return Events(s_customer[session], session, event_type, event_s, product, n_sessions)


@dataclass(frozen=True)
class Reloads:
    """Customers re-loaded with changed attributes; ``stale_*`` hold the first row's values."""

    index: np.ndarray
    updated_s: np.ndarray
    stale_city: np.ndarray
    stale_income: np.ndarray
    stale_opt_in: np.ndarray
    changed_s: np.ndarray


def draw_reloads(
    customers: Customers, attributes: Attributes, rng: np.random.Generator
) -> Reloads:
    n = customers.size
    index = np.flatnonzero(dirt.flag(n, dirt.DIRT_RATES["customer_reloaded"], rng))
    index = index[customers.created_s[index] < DATA_SECONDS - SECONDS_PER_DAY]
    k = len(index)
    created = customers.created_s[index]
    room = DATA_SECONDS - SECONDS_PER_DAY - created
    updated = created + SECONDS_PER_DAY + np.floor(rng.random(k) * room).astype(np.int64)
    change = rng.random((k, 3)) < 0.5
    change[np.arange(k), rng.integers(0, 3, k)] = True
    per_region = len(CITY_SHARES)
    city = attributes.city.copy()
    other = (city[index] % per_region + rng.integers(1, per_region, k)) % per_region
    city[index] = np.where(
        change[:, 0], city[index] - city[index] % per_region + other, city[index]
    )
    income = attributes.income.copy()
    factor = np.where(change[:, 1], rng.uniform(0.75, 0.95, k), 1.0)
    income[index] = np.round(income[index] * factor, -2)
    opt_in = attributes.opt_in.copy()
    opt_in[index] = np.where(change[:, 2], ~opt_in[index], opt_in[index])
    changed_s = np.full(n, np.iinfo(np.int64).max)
    changed_s[index] = updated
    return Reloads(index, updated, city, income, opt_in, changed_s)
