"""The contact cap on the shared scored shop: recent exports and touches rest a customer."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import pytest

from ml.delivery.activation import MEMBERS_TABLE
from ml.run.build import dbt_vars, run_dbt
from tests.marketing.scored import private_settings

pytestmark = pytest.mark.xdist_group("marketing")

N_RECENTLY_EXPORTED = 50
EXPORTED_ON = date(2025, 9, 21)  # ten days before the shared shop's as_of


@pytest.fixture(scope="module")
def capped(
    marketing_dir: Path, generated_data: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[duckdb.DuckDBPyConnection, set[str]]:
    """Record an earlier export of the best-ranked treated customers, rebuild with a cap of 1."""
    settings = private_settings(
        marketing_dir, generated_data, tmp_path_factory.mktemp("contact_cap")
    )
    with duckdb.connect(str(settings.warehouse)) as con:
        recent = [
            customer_id
            for (customer_id,) in con.execute(
                "select customer_id from marketing.campaign_audiences where not is_control"
                " order by audience_rank, customer_id limit ?",
                [N_RECENTLY_EXPORTED],
            ).fetchall()
        ]
        con.execute(
            f"insert into {MEMBERS_TABLE} by name select unnest(?) as customer_id,"
            " 'earlier' as audience_id, 'earlier-2025-09-21' as campaign_key,"
            " 'email' as channel, false as is_control, ? as exported_on, 'm' as model_id",
            [recent, EXPORTED_ON],
        )
    variables = dbt_vars(settings, extra={"contact_cap_max_contacts": 1, "contact_cap_days": 30})
    run_dbt(settings, "run --select audience_candidates+", variables)
    con = duckdb.connect(str(settings.warehouse), read_only=True)
    yield con, set(recent)
    con.close()


def test_a_customer_exported_within_the_window_is_not_selected_again(
    capped: tuple[duckdb.DuckDBPyConnection, set[str]],
) -> None:
    con, recent = capped
    rows = con.execute(
        "select customer_id, selection, n_recent_contacts from marketing.audience_candidates"
        " where customer_id in (select unnest(?))",
        [sorted(recent)],
    ).fetchall()
    assert {customer_id for customer_id, *_ in rows} == recent
    assert all(n >= 1 and selection != "selected" for _, selection, n in rows)
    selected = con.execute(
        "select count(*) from marketing.campaign_audiences"
        " where customer_id in (select unnest(?))",
        [sorted(recent)],
    ).fetchone()
    assert selected == (0,)


def test_the_shops_own_treated_touches_count_as_contacts(
    capped: tuple[duckdb.DuckDBPyConnection, set[str]],
) -> None:
    con, recent = capped
    touched = {
        customer_id
        for (customer_id,) in con.execute(
            "select distinct customer_id from staging.stg_shop__campaign_touches"
            " where not is_control and sent_at >= timestamp '2025-09-01'"
            " and sent_at < timestamp '2025-10-01'"
        ).fetchall()
    }
    assert touched - recent, "the generated shop sends touches in the month before as_of"
    still_selected = con.execute(
        "select count(*) from marketing.campaign_audiences"
        " where customer_id in (select unnest(?))",
        [sorted(touched)],
    ).fetchone()
    assert still_selected == (0,)


def test_the_summary_counts_customers_over_the_cap(
    capped: tuple[duckdb.DuckDBPyConnection, set[str]],
) -> None:
    con, _ = capped
    [(from_candidates,)] = con.execute(
        "select count(*) from marketing.audience_candidates where selection = 'contact_cap'"
    ).fetchall()
    [(from_summary,)] = con.execute(
        "select sum(n_over_contact_cap) from marketing.audience_summary"
    ).fetchall()
    assert from_summary == from_candidates >= N_RECENTLY_EXPORTED
