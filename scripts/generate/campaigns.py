"""The campaign schedule (depends on the seed only) and the touches it sends to customers.

A treated touch (not a control) multiplies the customer's purchase rate by its campaign's
``rate_multiplier`` from ``sent_at`` for ``EFFECT_DAYS``; control touches are recorded but never
delivered, so they change nothing. Placebo campaigns have a multiplier of exactly 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from scripts.generate.arrow import dictionary_array, format_ids, timestamp_array
from scripts.generate.personas import Customers
from scripts.ground_truth import DATA_SECONDS, SECONDS_PER_DAY, SECONDS_PER_WEEK

TOUCH_CHANNELS = ("email", "sms", "push", "ads")
TOUCH_CHANNEL_SHARES = (0.5, 0.2, 0.2, 0.1)
TOUCH_OPEN_FACTOR = (1.0, 0.9, 0.6, 0.25)
N_CAMPAIGNS = 26
CONTROL_SHARE = 0.10
EFFECT_DAYS = 14
"""How long a treated touch raises the purchase rate (the warehouse's conversion window)."""
EFFECT_RANGE = (1.3, 1.6)
"""Purchase-rate multipliers of real campaigns are drawn uniformly from this range."""
PLACEBO_CAMPAIGNS = (6, 19)
"""Zero-based indices of the placebo campaigns (CMP007, CMP020): multiplier exactly 1."""
_CAMPAIGNS_KEY = 2**31 - 2


@dataclass(frozen=True)
class Campaigns:
    sent_s: np.ndarray
    channel: np.ndarray
    target_share: np.ndarray
    rate_multiplier: np.ndarray

    def table(self) -> pa.Table:
        """The schedule and every campaign's true effect, as written to the ground truth."""
        return pa.table(
            {
                "campaign_id": campaign_ids(np.arange(len(self.sent_s))),
                "sent_at": timestamp_array(self.sent_s),
                "channel": dictionary_array(TOUCH_CHANNELS, self.channel).cast(pa.string()),
                "target_share": pa.array(self.target_share),
                "rate_multiplier": pa.array(self.rate_multiplier),
                "effect_days": pa.array(np.full(len(self.sent_s), EFFECT_DAYS)),
                "is_placebo": pa.array(self.rate_multiplier == 1.0),
            }
        )

    def empty(self) -> Campaigns:
        """No campaign at all (a shop without marketing data)."""
        empty = slice(0, 0)
        return Campaigns(
            self.sent_s[empty],
            self.channel[empty],
            self.target_share[empty],
            self.rate_multiplier[empty],
        )


def build_campaigns(seed: int) -> Campaigns:
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(_CAMPAIGNS_KEY,)))
    weeks = 2 + 4 * np.arange(N_CAMPAIGNS)
    day = rng.integers(0, 5, N_CAMPAIGNS)
    hour = rng.integers(8, 18, N_CAMPAIGNS)
    sent_s = weeks * SECONDS_PER_WEEK + day * SECONDS_PER_DAY + hour * 3600
    channel = rng.choice(len(TOUCH_CHANNELS), N_CAMPAIGNS, p=TOUCH_CHANNEL_SHARES)
    target_share = rng.uniform(0.15, 0.5, N_CAMPAIGNS)
    rate_multiplier = rng.uniform(*EFFECT_RANGE, N_CAMPAIGNS)
    rate_multiplier[list(PLACEBO_CAMPAIGNS)] = 1.0
    return Campaigns(sent_s.astype(np.int64), channel, target_share, rate_multiplier)


def campaign_ids(index: np.ndarray) -> pa.Array:
    return format_ids("CMP", index + 1, 3)


@dataclass(frozen=True)
class Touches:
    campaign: np.ndarray
    customer: np.ndarray
    sent_s: np.ndarray
    opened_s: np.ndarray
    clicked_s: np.ndarray
    is_control: np.ndarray
    channel: np.ndarray


def simulate_touches(
    customers: Customers,
    campaigns: Campaigns,
    opt_in_before: np.ndarray,
    opt_in_after: np.ndarray,
    changed_s: np.ndarray,
    rng: np.random.Generator,
) -> Touches:
    sent = campaigns.sent_s[:, None]
    opted_in = np.where(sent < changed_s[None, :], opt_in_before[None, :], opt_in_after[None, :])
    eligible = opted_in & (customers.created_s[None, :] < sent)
    targeted = eligible & (rng.random(eligible.shape) < campaigns.target_share[:, None])
    campaign, customer = np.nonzero(targeted)
    n = len(campaign)
    is_control = rng.random(n) < CONTROL_SHARE
    channel = campaigns.channel[campaign]
    open_prob = customers.response[customer] * np.array(TOUCH_OPEN_FACTOR)[channel]
    opened = ~is_control & (rng.random(n) < open_prob)
    clicked = opened & (rng.random(n) < 0.15 + 0.5 * customers.response[customer])
    sent_s = campaigns.sent_s[campaign] + rng.integers(0, 7200, n)
    opened_s = sent_s + np.floor(rng.exponential(8 * 3600, n)).astype(np.int64)
    clicked_s = opened_s + np.floor(rng.exponential(900, n)).astype(np.int64)
    opened &= opened_s < DATA_SECONDS
    clicked &= opened & (clicked_s < DATA_SECONDS)
    return Touches(
        campaign,
        customer,
        sent_s,
        np.where(opened, opened_s, -1),
        np.where(clicked, clicked_s, -1),
        is_control,
        channel,
    )


@dataclass(frozen=True)
class UpliftWindows:
    """The treated touches that change purchases: from ``start_s`` to ``end_s`` (exclusive) the
    customer's purchase rate is multiplied by ``multiplier``."""

    customer: np.ndarray
    campaign: np.ndarray
    start_s: np.ndarray
    end_s: np.ndarray
    multiplier: np.ndarray


def uplift_windows(touches: Touches, campaigns: Campaigns) -> UpliftWindows:
    """Return the effect window of every treated touch of a campaign that has an effect."""
    multiplier = campaigns.rate_multiplier[touches.campaign]
    effective = np.flatnonzero(~touches.is_control & (multiplier != 1.0))
    start_s = touches.sent_s[effective]
    end_s = np.clip(start_s + EFFECT_DAYS * SECONDS_PER_DAY, start_s, DATA_SECONDS)
    return UpliftWindows(
        touches.customer[effective],
        touches.campaign[effective],
        start_s,
        end_s,
        multiplier[effective],
    )
