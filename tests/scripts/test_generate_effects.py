"""Realism of the standard shop: complementary categories in baskets, campaigns that work."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from scripts.generate import COMPLEMENTS, EFFECT_DAYS, PLACEBO_CAMPAIGNS, generate
from scripts.ground_truth import load_ground_truth, load_uplift_windows, true_purchase_probability
from tests.scripts.shops import connect

MIN_PAIR_ORDERS = 20
"""The warehouse's default ``recommendation_min_pair_orders``."""


@pytest.fixture(scope="module")
def shop_4k(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("shop_4k")
    generate(4_000, seed=8, out_dir=out)
    return out


@pytest.fixture(scope="module")
def pair_lifts(shop_4k: Path) -> pd.DataFrame:
    """Category pair lift over counted orders, computed the way the recommendation mart does."""
    con = connect(shop_4k)
    return con.execute(
        """
        with order_categories as (
            select distinct orders.order_id, products.category
            from order_items
            inner join orders on order_items.order_id = orders.order_id
            inner join products on order_items.product_id = products.product_id
            where orders.status <> 'cancelled'
        ),
        n_orders as (select count(distinct order_id) as n from order_categories),
        per_category as (
            select category, count(*) as n from order_categories group by category
        ),
        pairs as (
            select left_side.category as left_category, right_side.category as right_category,
                count(*) as n_together
            from order_categories as left_side
            inner join order_categories as right_side
                on left_side.order_id = right_side.order_id
                and left_side.category < right_side.category
            group by 1, 2
        )
        select
            pairs.left_category,
            pairs.right_category,
            pairs.n_together,
            pairs.n_together * n_orders.n / (left_orders.n * right_orders.n) as lift
        from pairs
        cross join n_orders
        inner join per_category as left_orders on pairs.left_category = left_orders.category
        inner join per_category as right_orders on pairs.right_category = right_orders.category
        """
    ).fetchdf()


def _is_complement(frame: pd.DataFrame) -> pd.Series:
    pairs = {tuple(sorted(pair)) for pair in COMPLEMENTS}
    return pd.Series(
        [
            (left, right) in pairs
            for left, right in zip(frame["left_category"], frame["right_category"], strict=True)
        ],
        index=frame.index,
    )


# --------------------------------------------------------------------------------------------
# Baskets


def test_complement_pairs_are_bought_together_clearly_more_than_chance(
    pair_lifts: pd.DataFrame,
) -> None:
    complement = pair_lifts[_is_complement(pair_lifts)]
    assert len(complement) == len(COMPLEMENTS)
    assert complement["lift"].min() > 1.5
    assert complement["n_together"].min() >= 10 * MIN_PAIR_ORDERS


def test_only_complement_pairs_have_a_lift_above_one(pair_lifts: pd.DataFrame) -> None:
    others = pair_lifts[~_is_complement(pair_lifts)]
    assert len(others) > 30
    assert others["lift"].max() < 1.0


def test_ground_truth_records_the_complement_pairs(shop_4k: Path) -> None:
    meta = json.loads((shop_4k / "ground_truth" / "meta.json").read_text())
    assert {tuple(pair) for pair in meta["complement_pairs"]} == set(COMPLEMENTS)
    assert 0 < meta["complement_prob"] < 1


# --------------------------------------------------------------------------------------------
# Campaigns


@pytest.fixture(scope="module")
def conversions(con: duckdb.DuckDBPyConnection, large: Path) -> pd.DataFrame:
    """Per campaign and arm: touches, and touches followed by a counted purchase in 14 days."""
    campaigns = large / "ground_truth" / "campaigns.parquet"
    return con.execute(
        f"""
        with converted as (
            select
                campaign_touches.touch_id,
                any_value(campaign_touches.campaign_id) as campaign_id,
                any_value(campaign_touches.is_control) as is_control,
                count(orders.order_id) > 0 as is_converted
            from campaign_touches
            left join orders
                on campaign_touches.customer_id = orders.customer_id
                and orders.status <> 'cancelled'
                and orders.ordered_at >= campaign_touches.sent_at
                and orders.ordered_at < campaign_touches.sent_at + interval {EFFECT_DAYS} day
            group by campaign_touches.touch_id
        )
        select
            converted.campaign_id,
            campaigns.is_placebo,
            count(*) filter (where not is_control) as n_treated,
            count(*) filter (where not is_control and is_converted) as n_treated_converted,
            count(*) filter (where is_control) as n_control,
            count(*) filter (where is_control and is_converted) as n_control_converted
        from converted
        inner join read_parquet('{campaigns}') as campaigns using (campaign_id)
        group by 1, 2
        """
    ).fetchdf()


def _lift_z(per_campaign: pd.DataFrame) -> tuple[float, float]:
    """Treated-over-control conversion ratio and the Cochran-Mantel-Haenszel z over campaigns.

    Campaigns are strata (the base rate moves with the season); the z stays valid when a
    campaign's control arm is small, unlike a pooled Wald statistic.
    """
    n_t, x_t = per_campaign["n_treated"], per_campaign["n_treated_converted"]
    n_c, x_c = per_campaign["n_control"], per_campaign["n_control_converted"]
    n, x = n_t + n_c, x_t + x_c
    expected = n_t * x / n
    variance = n_t * n_c * x * (n - x) / (n**2 * (n - 1))
    z = float((x_t - expected).sum() / np.sqrt(variance.sum()))
    ratio = float((x_t / n_t * n_c).sum() / x_c.sum())
    return ratio, z


def test_real_campaigns_raise_conversion_over_control_beyond_chance(
    conversions: pd.DataFrame,
) -> None:
    real = conversions[~conversions["is_placebo"]]
    assert real["n_control"].sum() > 3_000
    ratio, z = _lift_z(real)
    # Without an effect a z above 6 has a chance probability of about 1e-9.
    assert z > 6, (ratio, z)
    assert ratio > 1.15


def test_placebo_campaigns_show_no_conversion_lift(conversions: pd.DataFrame) -> None:
    placebo = conversions[conversions["is_placebo"]]
    assert len(placebo) == len(PLACEBO_CAMPAIGNS)
    assert placebo["n_control"].sum() > 200
    ratio, z = _lift_z(placebo)
    assert abs(z) < 3, (ratio, z)


def test_ground_truth_records_effects_windows_and_the_flag(large: Path) -> None:
    campaigns = pd.read_parquet(large / "ground_truth" / "campaigns.parquet")
    placebo = campaigns["is_placebo"]
    assert placebo.sum() == len(PLACEBO_CAMPAIGNS)
    assert (campaigns.loc[placebo, "rate_multiplier"] == 1.0).all()
    assert campaigns.loc[~placebo, "rate_multiplier"].between(1.3, 1.6).all()
    assert (campaigns["effect_days"] == EFFECT_DAYS).all()

    windows = load_uplift_windows(large)
    touches = pd.read_parquet(large / "raw" / "campaign_touches.parquet")
    real = set(campaigns.loc[~placebo, "campaign_id"])
    treated = touches[~touches["is_control"] & touches["campaign_id"].isin(real)]
    assert len(windows) == len(treated)
    assert set(windows["campaign_id"]) <= real
    assert ((windows["ends_at"] - windows["starts_at"]) <= timedelta(days=EFFECT_DAYS)).all()
    meta = json.loads((large / "ground_truth" / "meta.json").read_text())
    assert meta["campaigns_affect_purchases"] is True


def test_oracle_with_uplift_windows_matches_purchases_after_a_send(large: Path) -> None:
    """Right after a real campaign, treated customers buy as the oracle with windows says."""
    truth = load_ground_truth(large)
    windows = load_uplift_windows(large)
    campaigns = pd.read_parquet(large / "ground_truth" / "campaigns.parquet")
    touches = pd.read_parquet(large / "raw" / "campaign_touches.parquet")
    orders = pd.read_parquet(large / "raw" / "orders.parquet")
    orders = orders[orders["status"] != "cancelled"]
    campaign = campaigns[~campaigns["is_placebo"]].iloc[-2]
    start = (campaign["sent_at"].normalize() + pd.Timedelta(days=1)).date()
    is_treated = ~touches["is_control"] & (touches["campaign_id"] == campaign["campaign_id"])
    treated = truth.loc[truth.index.intersection(touches.loc[is_treated, "customer_id"])]
    low = pd.Timestamp(start)
    in_window = orders[
        (orders["ordered_at"] >= low) & (orders["ordered_at"] < low + pd.Timedelta(days=10))
    ]
    bought = treated.index.isin(in_window["customer_id"])

    with_windows = true_purchase_probability(treated, start, 10, windows)
    without = true_purchase_probability(treated, start, 10)
    standard_error = np.sqrt((with_windows * (1 - with_windows)).sum()) / len(treated)
    assert len(treated) > 1_000
    assert abs(bought.mean() - with_windows.mean()) < 4 * standard_error + 0.005
    assert bought.mean() - without.mean() > 4 * standard_error
