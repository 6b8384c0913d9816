"""The channel_consent shape and the shop's side of a closed campaign loop."""

from __future__ import annotations

import csv
from datetime import datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from scripts.generate import SHAPES, generate
from scripts.generate.campaign_loop import run_exported_campaign
from scripts.generate.consent import UNPARSABLE_VALUE

N_CUSTOMERS = 600
SEED = 4
CHUNK = 250
CONSENT_COLUMNS = ["email_consent", "sms_consent", "push_consent"]
SENT_AT = datetime(2025, 10, 3, 9, 0, 0)


def _rows(path: Path) -> list[list[str]]:
    with path.open(newline="") as file:
        return list(csv.reader(file))


@pytest.fixture(scope="module")
def shops(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    standard = tmp_path_factory.mktemp("standard")
    consent = tmp_path_factory.mktemp("consent")
    generate(N_CUSTOMERS, SEED, standard, fmt="csv", chunk_size=CHUNK)
    generate(N_CUSTOMERS, SEED, consent, chunk_size=CHUNK, shape="channel_consent")
    return standard / "raw", consent / "raw"


def test_channel_consent_is_the_standard_shop_plus_three_customer_columns(
    shops: tuple[Path, Path],
) -> None:
    standard, consent = shops
    assert list(SHAPES["channel_consent"]["customers"][-3:]) == CONSENT_COLUMNS
    for name in SHAPES["standard"]:
        if name != "customers":
            assert (consent / f"{name}.csv").read_bytes() == (
                standard / f"{name}.csv"
            ).read_bytes(), name
    with_consent, without = _rows(consent / "customers.csv"), _rows(standard / "customers.csv")
    assert with_consent[0] == without[0] + CONSENT_COLUMNS
    assert len(with_consent) == len(without)
    width = len(without[0])
    whole = [(a, b) for a, b in zip(with_consent, without, strict=True) if len(b) == width]
    assert len(whole) > 0.95 * len(without)
    assert all(a[:width] == b for a, b in whole)


def test_consent_values_are_stated_empty_or_rarely_unparsable(shops: tuple[Path, Path]) -> None:
    _, consent = shops
    rows = _rows(consent / "customers.csv")
    header = rows[0]
    records = [dict(zip(header, row, strict=True)) for row in rows[1:] if len(row) == len(header)]
    values = {column: {record[column] for record in records} for column in CONSENT_COLUMNS}
    assert values["email_consent"] == {"true", "false"}
    assert values["sms_consent"] == {"true", "false", UNPARSABLE_VALUE}
    assert values["push_consent"] == {"true", "false", ""}
    # Email follows the opt-in; SMS is stated on its own, both ways.
    assert all(
        record["marketing_opt_in"] == "true"
        for record in records
        if record["email_consent"] == "true"
    )
    assert any(
        record["marketing_opt_in"] == "false" and record["sms_consent"] == "true"
        for record in records
    )
    assert any(
        record["marketing_opt_in"] == "true" and record["sms_consent"] == "false"
        for record in records
    )


def _export(tmp_path: Path, customer_ids: list[str]) -> Path:
    """An export directory with two audiences, as ml/delivery/activation.py writes it."""
    export_dir = tmp_path / "exports" / "2025-10-01"
    export_dir.mkdir(parents=True)
    half = len(customer_ids) // 2
    for audience, members in (("real", customer_ids[:half]), ("placebo", customer_ids[half:])):
        pq.write_table(
            pa.table(
                {
                    "customer_id": members,
                    "audience_id": [audience] * len(members),
                    "campaign_key": [f"{audience}-2025-10-01"] * len(members),
                    "channel": ["email"] * len(members),
                }
            ),
            export_dir / f"{audience}.parquet",
        )
    return export_dir


def test_a_minimal_shop_gets_a_touches_file_and_extra_orders_in_the_window(
    tmp_path: Path,
) -> None:
    generate(300, SEED, tmp_path / "shop", shape="minimal")
    raw = tmp_path / "shop" / "raw"
    rows = _rows(raw / "customers.csv")
    customers = list(dict.fromkeys(row[0] for row in rows[1:] if len(row) == len(rows[0])))
    customers = customers[:200]
    orders_before = _rows(raw / "orders.csv")
    run = run_exported_campaign(
        raw, _export(tmp_path, customers), {"real": 1.0, "placebo": 0.0}, SENT_AT
    )
    assert run.n_touches == {"placebo-2025-10-01": 100, "real-2025-10-01": 100}
    assert run.n_extra_orders == {"placebo-2025-10-01": 0, "real-2025-10-01": 100}
    touches = pacsv.read_csv(raw / "campaign_touches.csv")
    assert touches.num_rows == 200
    assert set(touches["campaign_key"].to_pylist()) == {"real-2025-10-01", "placebo-2025-10-01"}
    assert not any(touches["is_control"].to_pylist())
    orders_after = _rows(raw / "orders.csv")
    assert orders_after[: len(orders_before)] == orders_before
    header = orders_before[0]
    added = [dict(zip(header, row, strict=True)) for row in orders_after[len(orders_before) :]]
    assert len(added) == 100
    assert {row["customer_id"] for row in added} == set(customers[:100])
    for row in added:
        ordered_at = datetime.fromisoformat(row["ordered_at"])
        assert SENT_AT <= ordered_at < SENT_AT + timedelta(days=14)


def test_a_parquet_touches_file_gains_the_campaign_key_column(tmp_path: Path) -> None:
    generate(300, SEED, tmp_path / "shop")
    raw = tmp_path / "shop" / "raw"
    before = pq.read_table(raw / "campaign_touches.parquet")
    customers = pq.read_table(raw / "customers.parquet")["customer_id"].to_pylist()[:40]
    run_exported_campaign(raw, _export(tmp_path, customers), {"real": 0.5}, SENT_AT, seed=3)
    after = pq.read_table(raw / "campaign_touches.parquet")
    assert after.num_rows == before.num_rows + 20
    keys = after["campaign_key"].to_pylist()
    assert keys[: before.num_rows] == [None] * before.num_rows
    assert keys[before.num_rows :] == ["real-2025-10-01"] * 20


def test_an_uplift_outside_zero_to_one_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="uplift"):
        run_exported_campaign(tmp_path, _export(tmp_path, ["C1", "C2"]), {"real": 1.5}, SENT_AT)
