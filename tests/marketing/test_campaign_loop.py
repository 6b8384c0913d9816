"""The closed campaign loop: export audiences, let the shop run them, measure the lift.

On the shared scored shop: export at as_of, have the shop send two exported audiences a few
days later (scripts.generate.campaign_loop: touches carrying the export's campaign_key, and extra
purchases for 30% of one audience's treated members, none for the other, a placebo), rebuild a
month later and read marketing.audience_lift.
"""

from __future__ import annotations

import csv
import json
import shutil
from dataclasses import replace
from datetime import date, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from ml.delivery.activation import MANIFEST_NAME, MEMBERS_TABLE, export_audiences
from ml.run.build import dbt_vars, run_dbt
from scripts.generate import generate
from scripts.generate.campaign_loop import run_exported_campaign
from tests.conftest import make_settings
from tests.marketing.scored import private_settings

pytestmark = pytest.mark.xdist_group("marketing")

SENT_AT = datetime(2025, 10, 3, 9, 0, 0)
LATER_AS_OF = date(2025, 11, 1)  # the 14-day window after SENT_AT is complete
REAL_UPLIFT = 0.3
# Audiences of the seed playbook whose customers rarely buy in two weeks anyway (about 3%), so
# an extra purchase is a visible conversion lift; VIPs mostly buy regardless.
REAL_AUDIENCE = "win_back_high_value"
PLACEBO_AUDIENCE = "upsell_high_propensity"
# The 4k-customer shop's audiences hold a few hundred customers, so controls of 10% are 20-40.
MIN_GROUP_SIZE = 20


@pytest.fixture(scope="module")
def loop(
    marketing_dir: Path, generated_data: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict:
    """Export, run a real and a placebo campaign, rebuild later; the lift rows and the names."""
    root = tmp_path_factory.mktemp("campaign_loop")
    settings = private_settings(marketing_dir, generated_data, root)
    export_dir = export_audiences(settings)
    manifest = json.loads((export_dir / MANIFEST_NAME).read_text())
    real, placebo = REAL_AUDIENCE, PLACEBO_AUDIENCE
    raw = root / "raw"
    shutil.copytree(generated_data / "raw", raw)
    sent = run_exported_campaign(raw, export_dir, {real: REAL_UPLIFT, placebo: 0.0}, SENT_AT)
    later = replace(settings, raw_dir=raw, as_of=LATER_AS_OF)
    variables = dbt_vars(later, extra={"audience_lift_min_group_size": MIN_GROUP_SIZE})
    run_dbt(later, "run --select +audience_lift", variables)
    with duckdb.connect(str(later.warehouse), read_only=True) as con:
        cursor = con.execute("select * from marketing.audience_lift")
        names = [column[0] for column in cursor.description]
        rows = {row[0]: dict(zip(names, row, strict=True)) for row in cursor.fetchall()}
        members = con.execute(
            f"select campaign_key, count(*) filter (where is_control), count(*)"
            f" from {MEMBERS_TABLE} group by campaign_key"
        ).fetchall()
    return {
        "settings": later,
        "manifest": manifest,
        "real": manifest["audiences"][real]["campaign_key"],
        "placebo": manifest["audiences"][placebo]["campaign_key"],
        "sent": sent,
        "rows": rows,
        "members": {key: (n_control, n) for key, n_control, n in members},
    }


def test_every_export_row_carries_its_audience_id_and_campaign_key(loop: dict) -> None:
    manifest = loop["manifest"]
    for name, audience in manifest["audiences"].items():
        assert audience["audience_id"] == name
        assert audience["campaign_key"] == f"{name}-{manifest['as_of']}"
    assert {"audience_id", "campaign_key"} <= set(manifest["columns"])


def test_the_warehouse_records_every_exported_member_treated_and_control(loop: dict) -> None:
    manifest = loop["manifest"]
    for audience in manifest["audiences"].values():
        if audience["n_customers"] + audience["n_control"] == 0:
            continue
        n_control, n = loop["members"][audience["campaign_key"]]
        assert (n_control, n) == (
            audience["n_control"],
            audience["n_customers"] + audience["n_control"],
        )


def test_only_the_campaigns_the_shop_ran_are_measured(loop: dict) -> None:
    assert set(loop["rows"]) == {loop["real"], loop["placebo"]}


def test_groups_come_from_the_export_not_from_the_touches(loop: dict) -> None:
    manifest = loop["manifest"]
    for key in (loop["real"], loop["placebo"]):
        row = loop["rows"][key]
        audience = manifest["audiences"][row["audience_id"]]
        assert row["n_treatment"] == audience["n_customers"] == row["n_touched_customers"]
        assert row["n_control"] == audience["n_control"] > 0
        assert row["is_window_complete"]


def test_the_real_campaign_shows_a_significant_lift(loop: dict) -> None:
    row = loop["rows"][loop["real"]]
    assert not row["is_too_small_to_conclude"]
    assert row["is_conversion_lift_significant"]
    assert row["conversion_lift_ci_low"] > 0
    # The interval covers the uplift written, give or take the shop's own purchases.
    assert row["conversion_lift_ci_low"] < REAL_UPLIFT < row["conversion_lift_ci_high"] + 0.1
    assert row["conclusion"].startswith("the campaign raised conversion")
    assert row["revenue_lift"] > 0


def test_the_placebo_shows_no_lift(loop: dict) -> None:
    row = loop["rows"][loop["placebo"]]
    z = row["conversion_lift"] / row["conversion_lift_standard_error"]
    assert abs(z) < 3
    assert row["conversion_lift_ci_low"] < 0.15 and row["conversion_lift_ci_high"] > -0.15


def test_the_loop_closes_on_a_minimal_shop_without_a_touches_file(tmp_path: Path) -> None:
    """A customers-and-orders shop (the `minimal` shape, CSV): the shop's touches file is new."""
    generate(1_500, 7, tmp_path / "shop", shape="minimal")
    raw = tmp_path / "shop" / "raw"
    settings = replace(
        make_settings(raw, tmp_path / "segmart.duckdb", tmp_path), as_of=LATER_AS_OF
    )
    with (raw / "customers.csv").open(newline="") as file:
        rows = list(csv.reader(file))
    ids = sorted({row[0].strip() for row in rows[1:] if len(row) == 2 and row[0].strip()})[:1000]
    with duckdb.connect(str(settings.warehouse)) as con:
        members = pa.table(
            {
                "customer_id": ids,
                "audience_id": ["everyone"] * len(ids),
                "campaign_key": ["everyone-2025-10-01"] * len(ids),
                "channel": ["email"] * len(ids),
                "is_control": [index % 5 == 0 for index in range(len(ids))],
                "exported_on": [date(2025, 10, 1)] * len(ids),
                "model_id": ["m"] * len(ids),
            }
        )
        con.execute("create schema activation")
        con.register("members", members)
        con.execute(f"create table {MEMBERS_TABLE} as select * from members")
    export_dir = tmp_path / "exports" / "2025-10-01"
    export_dir.mkdir(parents=True)
    pq.write_table(
        members.filter(pc.invert(members["is_control"])), export_dir / "everyone.parquet"
    )
    run_exported_campaign(raw, export_dir, {"everyone": REAL_UPLIFT}, SENT_AT)
    variables = dbt_vars(settings)
    run_dbt(settings, "seed", variables)
    run_dbt(settings, "run --select +audience_lift", variables)
    with duckdb.connect(str(settings.warehouse), read_only=True) as con:
        [(n_treatment, n_control, n_touched, significant, low)] = con.execute(
            "select n_treatment, n_control, n_touched_customers,"
            " is_conversion_lift_significant, conversion_lift_ci_low from marketing.audience_lift"
        ).fetchall()
    assert (n_treatment, n_control, n_touched) == (800, 200, 800)
    assert significant and low > 0
