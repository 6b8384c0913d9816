"""The marketing marts on a generated shop: audiences, controls, RFM, recommendations, lift."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from pathlib import Path
from statistics import NormalDist

import duckdb
import pytest

from ml.errors import SegmartError
from ml.run.build import dbt_vars, run_dbt
from tests.marketing.scored import private_settings

# One xdist worker runs these modules, so their module fixtures (export, report) run once.
pytestmark = pytest.mark.xdist_group("marketing")

# The grid documented in _marketing__models.yml, cell by cell: (recency, frequency) -> group.
RFM_GRID = {
    **{(5, f): "Champions" for f in (4, 5)},
    **{(r, f): "Loyal" for r in (3, 4) for f in (4, 5)},
    **{(r, f): "Potential loyalists" for r in (4, 5) for f in (2, 3)},
    (5, 1): "New",
    (4, 1): "Promising",
    (3, 3): "Need attention",
    **{(3, f): "About to sleep" for f in (1, 2)},
    **{(r, 5): "Can't lose them" for r in (1, 2)},
    **{(r, f): "At risk" for r in (1, 2) for f in (3, 4)},
    (1, 1): "Lost",
    **{(r, f): "Hibernating" for r, f in ((1, 2), (2, 1), (2, 2))},
}


def rows(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> list[tuple]:
    return con.execute(sql, params or []).fetchall()


def test_the_documented_rfm_grid_covers_each_cell_once() -> None:
    assert sorted(RFM_GRID) == [(r, f) for r in range(1, 6) for f in range(1, 6)]


def test_rfm_groups_follow_the_documented_grid(con: duckdb.DuckDBPyConnection) -> None:
    cells = rows(
        con,
        "select distinct recency_score, frequency_score, rfm_group from marketing.rfm_scores"
        " where recency_score is not null",
    )
    assert len(cells) >= 20, "the generated shop should populate most of the grid"
    assert {(r, f): group for r, f, group in cells} == {
        (r, f): RFM_GRID[(r, f)] for r, f, _ in cells
    }


def test_rfm_scores_see_only_orders_before_as_of(con: duckdb.DuckDBPyConnection) -> None:
    [(n_rows, earliest_gap, n_customers)] = rows(
        con,
        "select count(*), min(days_since_last_order), count(distinct customer_id)"
        " from marketing.rfm_scores",
    )
    assert earliest_gap >= 1  # the last order is strictly before as_of
    assert n_rows == n_customers
    [(n_features,)] = rows(con, "select count(*) from ml.customer_features")
    assert n_rows == n_features


def test_each_customer_is_in_at_most_one_audience(con: duckdb.DuckDBPyConnection) -> None:
    [(n_rows, n_customers)] = rows(
        con, "select count(*), count(distinct customer_id) from marketing.campaign_audiences"
    )
    assert n_rows == n_customers > 0


def test_customers_without_marketing_opt_in_are_never_selected(
    con: duckdb.DuckDBPyConnection,
) -> None:
    [(n_opted_out,)] = rows(
        con,
        "select count(*) from marketing.campaign_audiences"
        " inner join core.customers using (customer_id) where not is_marketing_opt_in",
    )
    assert n_opted_out == 0
    # The rule has something to exclude: opted-out customers in groups the playbook targets.
    [(n_would_match,)] = rows(
        con,
        "select count(*) from marketing.rfm_scores inner join core.customers using (customer_id)"
        " where not is_marketing_opt_in and lifecycle_stage in ('vip', 'new')",
    )
    assert n_would_match > 0


def test_customers_get_the_matching_audience_of_highest_priority(
    con: duckdb.DuckDBPyConnection,
) -> None:
    wrong = rows(
        con,
        """
        select customer_id
        from marketing.audience_candidates
        group by customer_id
        having min(priority) <> coalesce(
            min(priority) filter (where selection <> 'higher_priority_audience'), -1
        )
        """,
    )
    assert wrong == []


def test_control_share_is_within_four_standard_errors_of_the_playbook(
    con: duckdb.DuckDBPyConnection,
) -> None:
    audiences = rows(
        con,
        "select audience, n_customers, n_control, control_share from marketing.audience_summary",
    )
    total = sum(n for _, n, _, _ in audiences)
    controls = sum(c for _, _, c, _ in audiences)
    assert total >= 500
    assert abs(controls / total - 0.1) <= 4 * math.sqrt(0.1 * 0.9 / total)
    for audience, n, n_control, share in audiences:
        if n >= 100:
            tolerance = 4 * math.sqrt(share * (1 - share) / n)
            assert abs(n_control / n - share) <= tolerance, audience


def test_control_group_is_reproducible_from_an_md5_of_customer_and_audience(
    con: duckdb.DuckDBPyConnection,
) -> None:
    candidates = rows(
        con,
        "select customer_id, audience, control_share, is_control"
        " from marketing.audience_candidates",
    )
    assert candidates
    for customer_id, audience, share, is_control in candidates:
        digest = hashlib.md5(f"{customer_id}|{audience}".encode()).hexdigest()
        assert (int(digest[:8], 16) / 2**32 < share) == is_control


def test_recommendations_skip_categories_bought_in_the_90_days_before_as_of(
    con: duckdb.DuckDBPyConnection,
) -> None:
    repeated = rows(
        con,
        """
        select recommendations.customer_id, recommendations.category
        from marketing.customer_recommendations as recommendations
        inner join core.orders
            on recommendations.customer_id = orders.customer_id
            and orders.is_counted_purchase
            and orders.ordered_on >= recommendations.as_of - 90
            and orders.ordered_on < recommendations.as_of
        inner join staging.stg_shop__order_items as items
            on orders.order_id = items.order_id
        inner join staging.stg_shop__products as products
            on items.product_id = products.product_id
            and products.category = recommendations.category
        """,
    )
    assert repeated == []
    [(n_customers, max_rank)] = rows(
        con,
        "select count(distinct customer_id), max(rank) from marketing.customer_recommendations",
    )
    assert n_customers > 0 and max_rank == 3


def test_campaign_interval_is_the_normal_approximation(con: duckdb.DuckDBPyConnection) -> None:
    z = NormalDist().inv_cdf(0.975)
    results = rows(
        con,
        "select n_treatment, n_control, n_converted_treatment, n_converted_control,"
        " absolute_lift_ci_low, absolute_lift_ci_high from marketing.campaign_results"
        " where n_control > 0 and n_treatment > 0",
    )
    assert results
    for n_t, n_c, x_t, x_c, low, high in results:
        p_t, p_c = x_t / n_t, x_c / n_c
        half_width = z * math.sqrt(p_t * (1 - p_t) / n_t + p_c * (1 - p_c) / n_c)
        assert low == pytest.approx(p_t - p_c - half_width, abs=1e-6)
        assert high == pytest.approx(p_t - p_c + half_width, abs=1e-6)


def test_marketing_tables_hold_no_pii(con: duckdb.DuckDBPyConnection) -> None:
    columns = rows(
        con,
        "select table_name, column_name, data_type from information_schema.columns"
        " where table_schema = 'marketing'",
    )
    names = {column for _, column, _ in columns}
    assert not names & {
        "email",
        "name",
        "first_name",
        "last_name",
        "phone",
        "address",
        "birth_date",
    }
    for table, column, data_type in columns:
        if data_type == "VARCHAR":
            [(n_emails,)] = rows(
                con, f"select count(*) from marketing.{table} where \"{column}\" like '%@%'"
            )
            assert n_emails == 0, f"{table}.{column}"


def test_empty_audiences_fail_the_build_while_any_customer_has_consent(
    marketing_dir: Path, generated_data: Path, tmp_path: Path
) -> None:
    # The consent-aware test keeps its teeth: empty audiences are allowed only without consent.
    settings = private_settings(marketing_dir, generated_data, tmp_path)
    select = "campaign_audiences,test_name:not_empty_when"
    with duckdb.connect(str(settings.warehouse)) as writable:
        writable.execute("delete from marketing.campaign_audiences")
    with pytest.raises(
        SegmartError, match="campaign_audiences_not_empty_when_a_customer_has_consent"
    ):
        run_dbt(settings, "test", dbt_vars(settings), select=select)
    with duckdb.connect(str(settings.warehouse)) as writable:
        writable.execute("update core.customers set is_marketing_opt_in = false")
    finished: list[tuple[str, str]] = []
    run_dbt(settings, "test", dbt_vars(settings), select=select, on_node=_record(finished))
    assert ("campaign_audiences_not_empty_when_a_customer_has_consent", "pass") in finished


def _record(finished: list[tuple[str, str]]) -> Callable[[str, str], None]:
    return lambda name, status: finished.append((name, status))


def test_without_campaign_keys_on_the_touches_no_lift_is_reported(
    con: duckdb.DuckDBPyConnection,
) -> None:
    """The generated shop's touches carry no campaign_key: its campaigns are not segmart's."""
    [(n_keyed,)] = con.execute(
        "select count(*) from staging.stg_shop__campaign_touches where campaign_key is not null"
    ).fetchall()
    [(n_campaigns,)] = con.execute("select count(*) from marketing.campaign_results").fetchall()
    [(n_lifts,)] = con.execute("select count(*) from marketing.audience_lift").fetchall()
    assert (n_keyed, n_lifts) == (0, 0)
    assert n_campaigns > 0


# Co-purchase lift computed the plain way: each counted order before as_of, its categories.
PLAIN_CO_PURCHASE = """
with as_of as (select max(as_of_on) as as_of_on from intermediate.int_snapshot_dates),
order_categories as (
    select distinct orders.order_id, orders.customer_id, orders.ordered_on, products.category
    from staging.stg_shop__orders as orders
    inner join staging.stg_shop__order_items as items on orders.order_id = items.order_id
    inner join staging.stg_shop__products as products on items.product_id = products.product_id
    where orders.is_counted_purchase and products.category <> 'unknown'
        and orders.ordered_on < (select as_of_on from as_of)
),
n_orders as (select count(distinct order_id) as n from order_categories),
per_category as (select category, count(*) as n from order_categories group by category),
pairs as (
    select a.category as antecedent, b.category as consequent, count(*) as n
    from order_categories as a inner join order_categories as b
        on a.order_id = b.order_id and a.category <> b.category
    group by all having count(*) >= 20
),
lift as (
    select pairs.antecedent, pairs.consequent,
        pairs.n * (select n from n_orders) / (ca.n * cb.n) as lift
    from pairs
    inner join per_category as ca on pairs.antecedent = ca.category
    inner join per_category as cb on pairs.consequent = cb.category
)
select bought.customer_id, lift.consequent, max(lift.lift)
from (select distinct customer_id, category from order_categories) as bought
inner join lift on bought.category = lift.antecedent
where lift.lift > 1
group by all
"""


def test_co_purchase_lift_holds_past_62_categories(
    marketing_dir: Path, generated_data: Path, tmp_path: Path
) -> None:
    """A catalogue of many more categories than the generator's (no limit of a 62-bit mask):
    every co-purchase score equals the lift computed order by order."""
    settings = private_settings(marketing_dir, generated_data, tmp_path)
    with duckdb.connect(str(settings.warehouse)) as writable:
        writable.execute(
            "update staging.stg_shop__products set category = category || ' / '"
            " || (hash(product_id) % 25) where category <> 'unknown'"
        )
        [(n_categories,)] = rows(
            writable, "select count(distinct category) from staging.stg_shop__products"
        )
    run_dbt(
        settings,
        "build",
        dbt_vars(settings),
        select="int_order_items_aggregated_to_customer_day_baskets customer_recommendations",
        full_refresh=True,
        unit_tests=False,
    )
    with duckdb.connect(str(settings.warehouse), read_only=True) as con:
        plain = {(c, k): s for c, k, s in rows(con, PLAIN_CO_PURCHASE)}
        recommended = rows(
            con,
            "select customer_id, category, score from marketing.customer_recommendations"
            " where source = 'co_purchase'",
        )
        [(n_past_62,)] = rows(
            con,
            "select count(*) from marketing.customer_recommendations where category in (select"
            " category from (select distinct category from staging.stg_shop__products"
            " where category <> 'unknown') order by category offset 62)",
        )
    assert n_categories > 62
    assert recommended and n_past_62 > 0
    for customer_id, category, score in recommended:
        assert math.isclose(score, plain[(customer_id, category)], rel_tol=1e-9)
