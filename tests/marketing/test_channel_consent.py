"""Per-channel consent, on the generator's `channel_consent` shape (not written by default).

The shop states email, SMS and push consent per customer besides marketing_opt_in: SMS on its
own (it overrides the opt-in both ways, and a few values are unparsable), push often left empty
(the opt-in decides). Built with dbt for real; stand-in predictions select the audiences.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow.csv as pa_csv
import pytest

from ml.run.build import dbt_vars, run_dbt
from scripts.generate import generate
from scripts.generate.consent import UNPARSABLE_VALUE
from tests.conftest import SEED, make_settings
from tests.marketing.fake_predictions import write_fake_predictions
from tests.marketing.scored import build_marketing

pytestmark = pytest.mark.xdist_group("marketing")

N_CUSTOMERS = 1_500


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The built warehouse of a channel_consent shop with its marketing marts, and its raw dir."""
    root = tmp_path_factory.mktemp("channel_consent")
    generate(N_CUSTOMERS, SEED, root / "shop", shape="channel_consent")
    raw = root / "shop" / "raw"
    settings = make_settings(raw, root / "segmart.duckdb", root)
    run_dbt(settings, "build --selector warehouse", dbt_vars(settings))
    with duckdb.connect(str(settings.warehouse)) as con:
        write_fake_predictions(con)
    build_marketing(settings)
    return settings.warehouse, raw


def _raw_consent(raw: Path, column: str) -> dict[str, set[str]]:
    """Every value a customer's raw rows give for a consent column ('' for empty)."""
    options = pa_csv.ConvertOptions(column_types={column: "string", "customer_id": "string"})
    table = pa_csv.read_csv(
        raw / "customers.csv",
        convert_options=options,
        parse_options=pa_csv.ParseOptions(invalid_row_handler=lambda row: "skip"),
    )
    values: dict[str, set[str]] = {}
    for customer_id, value in zip(
        table["customer_id"].to_pylist(), table[column].to_pylist(), strict=True
    ):
        values.setdefault(customer_id.strip(), set()).add(value or "")
    return values


def test_sms_audiences_hold_only_customers_who_said_yes_to_sms(
    shop: tuple[Path, Path],
) -> None:
    warehouse, raw = shop
    sms = _raw_consent(raw, "sms_consent")
    with duckdb.connect(str(warehouse), read_only=True) as con:
        candidates = con.execute(
            "select customer_id, is_selected from marketing.audience_candidates"
            " where channel = 'sms'"
        ).fetchall()
        opted_in = {
            customer_id
            for (customer_id,) in con.execute(
                "select customer_id from core.customers where is_marketing_opt_in"
            ).fetchall()
        }
    assert any(is_selected for _, is_selected in candidates)
    assert all(sms[customer_id] == {"true"} for customer_id, _ in candidates)
    # The general opt-in does not override a refusal: such customers exist and none is above.
    refusing = {customer_id for customer_id, values in sms.items() if values == {"false"}}
    assert refusing & opted_in


def test_an_empty_channel_consent_falls_back_to_the_opt_in_and_a_bad_one_to_no(
    shop: tuple[Path, Path],
) -> None:
    warehouse, raw = shop
    push = _raw_consent(raw, "push_consent")
    sms = _raw_consent(raw, "sms_consent")
    with duckdb.connect(str(warehouse), read_only=True) as con:
        rows = con.execute(
            "select customer_id, is_marketing_opt_in, has_push_consent, has_sms_consent"
            " from staging.stg_shop__customers where has_profile"
        ).fetchall()
    unstated = [row for row in rows if push.get(row[0]) == {""}]
    assert unstated and all(has_push == opt_in for _, opt_in, has_push, _ in unstated)
    unparsable = [row for row in rows if sms.get(row[0]) == {UNPARSABLE_VALUE}]
    assert unparsable and not any(has_sms for *_, has_sms in unparsable)


def test_an_unparsable_consent_is_quarantined_and_its_row_kept(shop: tuple[Path, Path]) -> None:
    warehouse, raw = shop
    sms = _raw_consent(raw, "sms_consent")
    with duckdb.connect(str(warehouse), read_only=True) as con:
        accepted = {
            customer_id
            for (customer_id,) in con.execute(
                "select customer_id from staging.stg_shop__customer_versions"
            ).fetchall()
        }
        quarantined = con.execute(
            "select distinct row_key from core.quarantined_values"
            " where source_table = 'customers' and column_name = 'sms_consent'"
            f" and rule = 'unparsable_value' and raw_value = '{UNPARSABLE_VALUE}'"
        ).fetchall()
        kept = con.execute(
            "select count(*) from staging.stg_shop__customers where customer_id in"
            " (select row_key from core.quarantined_values where column_name = 'sms_consent')"
        ).fetchone()
    expected = {key for key, values in sms.items() if UNPARSABLE_VALUE in values} & accepted
    assert expected and {key for (key,) in quarantined} == expected
    assert kept[0] == len(expected)
