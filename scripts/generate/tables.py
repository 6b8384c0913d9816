"""Arrow tables of one chunk, in the raw contract, with the dirt of ``scripts.dirt`` injected."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from scripts import dirt
from scripts.generate.arrow import dictionary_array, format_ids, timestamp_array
from scripts.generate.campaigns import (
    N_CAMPAIGNS,
    TOUCH_CHANNELS,
    Touches,
    UpliftWindows,
    campaign_ids,
)
from scripts.generate.catalogue import CATEGORIES, product_ids
from scripts.generate.contract import TRANSACTIONS_SCHEMA
from scripts.generate.personas import (
    ACQUISITION_CHANNELS,
    CITY_NAMES,
    EMAIL_DOMAINS,
    GENDERS,
    PERSONAS,
    REGIONS,
    Attributes,
    Customers,
)
from scripts.generate.simulation import (
    EVENT_TYPES,
    ORDER_CHANNELS,
    STATUSES,
    Events,
    Items,
    Orders,
    Reloads,
)
from scripts.ground_truth import DATA_END, SECONDS_PER_DAY

ORDER_ID_WIDTH = 11
ORPHAN_ORDER_NUMBER = 90_000_000_000
"""Orphan items reference order numbers from here on; real orders never get that far."""
EVENT_ID_WIDTH = 11
SESSION_ID_WIDTH = 11
TOUCH_ID_WIDTH = 11


@dataclass
class Counters:
    """Running id counters; chunks are simulated in order, so ids are deterministic."""

    order: int = 0
    session: int = 0
    event: int = 0
    touch: int = 0
    orphan_order: int = 0
    ghost_customer: int = 0


@dataclass(frozen=True)
class IdSpace:
    customer_width: int


def customers_table(
    customer_ids: pa.Array,
    customers: Customers,
    attributes: Attributes,
    reloads: Reloads,
    chunk_index: int,
    rng: np.random.Generator,
) -> pa.Table:
    """Original rows (stale values where re-loaded), then the re-loaded rows (true values)."""
    n = customers.size
    rates = dirt.DIRT_RATES
    index = reloads.index
    rows = np.concatenate([np.arange(n), index])
    is_reload = np.arange(len(rows)) >= n

    birth_days = attributes.birth_days.copy()
    future = dirt.flag(n, rates["birth_date_future"], rng)
    data_end_days = int(np.datetime64(DATA_END, "D").astype(np.int64))
    birth_days[future] = data_end_days + rng.integers(1, 3650, int(future.sum()))
    income = np.where(is_reload, attributes.income[rows], reloads.stale_income[rows])
    if chunk_index == 0:
        absurd = dirt.pick_exact(n, dirt.DIRT_COUNTS["income_absurd"], rng)
        income[np.isin(rows, absurd)] = dirt.ABSURD_INCOME
    missing_birth = dirt.flag(n, rates["birth_date_missing"], rng)[rows]
    missing_income = dirt.flag(n, rates["income_missing"], rng)[rows]
    missing_gender = dirt.flag(n, rates["gender_missing"], rng)[rows]
    city = np.where(is_reload, attributes.city[rows], reloads.stale_city[rows])
    opt_in = np.where(is_reload, attributes.opt_in[rows], reloads.stale_opt_in[rows])
    created_s = customers.created_s[rows]
    updated_s = np.concatenate([customers.created_s, reloads.updated_s])
    emails = pc.binary_join_element_wise(
        pc.utf8_lower(customer_ids),
        dictionary_array(EMAIL_DOMAINS, attributes.email_domain).dictionary_decode(),
        "@",
    )
    return pa.table(
        {
            "customer_id": customer_ids.take(rows),
            "created_at": timestamp_array(created_s),
            "updated_at": timestamp_array(updated_s),
            "email": emails.take(rows),
            "birth_date": pa.array(birth_days[rows].astype("datetime64[D]"), mask=missing_birth),
            "gender": dirt.spelled(
                attributes.gender[rows],
                GENDERS,
                dirt.GENDER_VARIANTS,
                rates["gender_variant_spelling"],
                rng,
                missing_gender,
            ),
            "region": dirt.spelled(
                attributes.region[rows],
                REGIONS,
                dirt.padded_case_variants(REGIONS),
                rates["region_variant_spelling"],
                rng,
            ),
            "city": dictionary_array(CITY_NAMES, city),
            "income": pa.array(income, mask=missing_income),
            "marketing_opt_in": pa.array(opt_in),
            "acquisition_channel": dirt.spelled(
                attributes.acquisition[rows],
                ACQUISITION_CHANNELS,
                dirt.case_variants(ACQUISITION_CHANNELS),
                rates["channel_variant_spelling"],
                rng,
            ),
        }
    )


def orders_table(
    customer_ids: pa.Array,
    customers: Customers,
    orders: Orders,
    counters: Counters,
    chunk_index: int,
    rng: np.random.Generator,
    ids: IdSpace,
) -> tuple[pa.Table, int]:
    """Return the orders table and how many order ids it used (clean orders come first)."""
    rates = dirt.DIRT_RATES
    n = len(orders.customer)
    total = orders.order_total.copy()
    if chunk_index == 0:
        negative = dirt.pick_exact(n, dirt.DIRT_COUNTS["order_total_negative"], rng)
        total[negative] = -total[negative]

    created = customers.created_s[orders.customer]
    early = np.flatnonzero(dirt.flag(n, rates["order_before_signup"], rng) & (created > 3600))
    room = np.minimum(90 * SECONDS_PER_DAY, created[early] - 1)
    lag = 1 + np.floor(rng.random(len(early)) * room).astype(np.int64)
    ghosts = np.flatnonzero(dirt.flag(n, rates["order_customer_missing"], rng))
    ghost_numbers = counters.ghost_customer + np.arange(len(ghosts))
    counters.ghost_customer += len(ghosts)
    customer_dictionary = pa.concat_arrays(
        [customer_ids, format_ids("C", ghost_numbers, ids.customer_width)]
    )

    # Values per order id; the extra dirt orders copy clean values of the order they mimic.
    source = np.concatenate([np.arange(n), early, ghosts])
    customer = np.concatenate(
        [orders.customer, orders.customer[early], customers.size + np.arange(len(ghosts))]
    )
    ordered_s = np.concatenate([orders.ordered_s, created[early] - lag, orders.ordered_s[ghosts]])
    total = np.concatenate([total, orders.order_total[early], orders.order_total[ghosts]])
    channel = dirt.spelled(
        orders.channel[source],
        ORDER_CHANNELS,
        dirt.case_variants(ORDER_CHANNELS),
        rates["channel_variant_spelling"],
        rng,
    )
    rows = dirt.duplicated_rows(len(source), rates["orders_duplicate"], rng)
    src = source[rows]
    table = pa.table(
        {
            "order_id": format_ids("O", counters.order + 1 + rows, ORDER_ID_WIDTH),
            "customer_id": pa.DictionaryArray.from_arrays(
                customer[rows].astype(np.int32), customer_dictionary
            ),
            "ordered_at": timestamp_array(ordered_s[rows]),
            "status": dictionary_array(STATUSES, orders.status[src]),
            "order_total": pa.array(total[rows]),
            "discount_total": pa.array(orders.discount_total[src]),
            "channel": channel.take(rows),
        }
    )
    return table, len(source)


def items_table(
    items: Items, counters: Counters, chunk_index: int, rng: np.random.Generator
) -> pa.Table:
    rates = dirt.DIRT_RATES
    n = len(items.order)
    quantity = items.quantity.copy()
    unit_price = items.unit_price.copy()
    negative = dirt.flag(n, rates["unit_price_negative"], rng)
    unit_price[negative] = -unit_price[negative]
    quantity[dirt.flag(n, rates["quantity_zero"], rng)] = 0
    if chunk_index == 0:
        absurd = dirt.pick_exact(n, dirt.DIRT_COUNTS["quantity_absurd"], rng)
        quantity[absurd] = dirt.ABSURD_QUANTITY
    orphans = np.flatnonzero(dirt.flag(n, rates["order_item_orphan"], rng))
    orphan_numbers = ORPHAN_ORDER_NUMBER + counters.orphan_order + np.arange(len(orphans))
    counters.orphan_order += len(orphans)
    order_numbers = np.concatenate([counters.order + 1 + items.order, orphan_numbers])
    # Orphans copy clean values of the item they mimic.
    source = np.concatenate([np.arange(n), orphans])
    quantity = np.concatenate([quantity, items.quantity[orphans]])
    unit_price = np.concatenate([unit_price, items.unit_price[orphans]])
    rows = dirt.duplicated_rows(len(source), rates["order_items_duplicate"], rng)
    src = source[rows]
    return pa.table(
        {
            "order_id": format_ids("O", order_numbers[rows], ORDER_ID_WIDTH),
            "product_id": product_ids(items.product[src]),
            "quantity": pa.array(quantity[rows]),
            "unit_price": pa.array(unit_price[rows]),
        }
    )


def events_table(
    customer_ids: pa.Array, events: Events, counters: Counters, rng: np.random.Generator
) -> pa.Table:
    n = len(events.session)
    rows = dirt.duplicated_rows(n, dirt.DIRT_RATES["web_events_duplicate"], rng)
    customer = events.customer[rows]
    anonymous = customer < 0
    table = pa.table(
        {
            "event_id": format_ids("E", counters.event + 1 + rows, EVENT_ID_WIDTH),
            "customer_id": pa.DictionaryArray.from_arrays(
                pa.array(customer.astype(np.int32), mask=anonymous), customer_ids
            ),
            "session_id": format_ids(
                "S", counters.session + 1 + events.session[rows], SESSION_ID_WIDTH
            ),
            "event_type": dictionary_array(EVENT_TYPES, events.event_type[rows]),
            "event_at": timestamp_array(events.event_s[rows]),
            "product_id": product_ids(events.product[rows]),
        }
    )
    counters.event += n
    counters.session += events.n_sessions
    return table


def touches_table(
    customer_ids: pa.Array, touches: Touches, counters: Counters, rng: np.random.Generator
) -> pa.Table:
    n = len(touches.campaign)
    table = pa.table(
        {
            "touch_id": format_ids("T", counters.touch + 1 + np.arange(n), TOUCH_ID_WIDTH),
            "campaign_id": dictionary_array(
                campaign_ids(np.arange(N_CAMPAIGNS)), touches.campaign
            ),
            "customer_id": pa.DictionaryArray.from_arrays(
                touches.customer.astype(np.int32), customer_ids
            ),
            "channel": dirt.spelled(
                touches.channel,
                TOUCH_CHANNELS,
                dirt.case_variants(TOUCH_CHANNELS),
                dirt.DIRT_RATES["channel_variant_spelling"],
                rng,
            ),
            "sent_at": timestamp_array(touches.sent_s),
            "opened_at": timestamp_array(touches.opened_s, null=touches.opened_s < 0),
            "clicked_at": timestamp_array(touches.clicked_s, null=touches.clicked_s < 0),
            "is_control": pa.array(touches.is_control),
        }
    )
    counters.touch += n
    return table


def truth_table(
    customer_ids: pa.Array, customers: Customers, attributes: Attributes, reloads: Reloads
) -> pa.Table:
    decline_s = customers.decline_s
    no_decline = np.isnan(decline_s)
    columns: dict[str, pa.Array] = {
        "customer_id": customer_ids,
        "persona": dictionary_array([p.name for p in PERSONAS], customers.persona).cast(
            pa.string()
        ),
        "created_at": timestamp_array(customers.created_s),
        "rate_per_week": pa.array(customers.rate),
        "first_order_prob": pa.array(customers.first_prob),
        "cancel_prob": pa.array(customers.cancel_prob),
        "return_prob": pa.array(customers.return_prob),
        "decline_start_at": timestamp_array(
            np.where(no_decline, 0, decline_s).astype(np.int64), null=no_decline
        ),
        "decline_tau_days": pa.array(customers.decline_tau_days, mask=no_decline),
        "basket_mean": pa.array(customers.basket_mean),
        "premium_share": pa.array(customers.premium_share),
        "discount_affinity": pa.array(customers.discount_affinity),
        "browse_rate_per_week": pa.array(customers.browse_rate),
        "browse_depth": pa.array(customers.browse_depth),
        "cart_prob": pa.array(customers.cart_prob),
        "campaign_response": pa.array(customers.response),
    }
    for c, category in enumerate(CATEGORIES):
        columns[f"pref_{category}"] = pa.array(customers.preference[:, c])
    labelled = {
        "gender": (GENDERS, attributes.gender),
        "region": (REGIONS, attributes.region),
        "city": (CITY_NAMES, attributes.city),
        "acquisition_channel": (ACQUISITION_CHANNELS, attributes.acquisition),
    }
    for name, (vocabulary, codes) in labelled.items():
        columns[name] = dictionary_array(vocabulary, codes).cast(pa.string())
    columns |= {
        "income": pa.array(attributes.income),
        "birth_date": pa.array(attributes.birth_days.astype("datetime64[D]")),
        "marketing_opt_in": pa.array(attributes.opt_in),
        "is_reloaded": pa.array(np.isin(np.arange(customers.size), reloads.index)),
    }
    return pa.table(columns)


def uplift_truth_table(customer_ids: pa.Array, windows: UpliftWindows) -> pa.Table:
    """The ground truth of campaign effects: one row per treated touch that changes purchases."""
    return pa.table(
        {
            "customer_id": customer_ids.take(pa.array(windows.customer)),
            "campaign_id": campaign_ids(windows.campaign),
            "starts_at": timestamp_array(windows.start_s),
            "ends_at": timestamp_array(windows.end_s),
            "rate_multiplier": pa.array(windows.multiplier, pa.float64()),
        }
    )


def transactions_table(
    customer_ids: pa.Array, orders: Orders, rng: np.random.Generator
) -> pa.Table:
    """One row per purchase (non-cancelled order): customer, ``YYYYMMDD`` day and total.

    The only dirt is the exact duplicate line (``orders_duplicate``): a purchase log has no
    profile to contradict, so the two lines read as two purchases.
    """
    purchases = np.flatnonzero(orders.status != STATUSES.index("cancelled"))
    rows = purchases[
        dirt.duplicated_rows(len(purchases), dirt.DIRT_RATES["orders_duplicate"], rng)
    ]
    return pa.table(
        {
            "customer_id": pa.DictionaryArray.from_arrays(
                orders.customer[rows].astype(np.int32), customer_ids
            ),
            "date": pc.strftime(timestamp_array(orders.ordered_s[rows]), format="%Y%m%d"),
            "amount": pa.array(orders.order_total[rows]).cast(
                TRANSACTIONS_SCHEMA.field("amount").type
            ),
        }
    )
