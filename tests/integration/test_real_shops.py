"""Shops whose files our generator does not write: mapped exports, encodings, big CSVs.

Each test drives the installed `segmart` command as a user would, in its own workspace.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from tests.integration.cli import SEGMART, segmart
from tests.integration.real_shops import (
    ACCENTED_CITIES,
    write_european_export,
    write_shopify_export,
)

pytestmark = pytest.mark.integration


AS_OF = "2025-10-01"


def _quick_run(workspace: Path, raw: Path, *options: str) -> subprocess.CompletedProcess[str]:
    """`segmart run` as of AS_OF with the fast classifier (these tests are about the data)."""
    return segmart(
        workspace,
        "run",
        "--raw-dir",
        str(raw),
        "--as-of",
        AS_OF,
        "--algorithm",
        "logistic_regression",
        *options,
    )


def _latin1_lines(path: Path) -> list[str]:
    """The data lines of a Latin-1 CSV file."""
    return path.read_bytes().decode("latin-1").splitlines()[1:]


def _query(workspace: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(workspace / "segmart.duckdb"), read_only=True) as con:
        return con.execute(sql).fetchall()


def test_shopify_orders_export_runs_end_to_end_with_hashed_customers(
    generated_data: Path, tmp_path: Path
) -> None:
    raw = tmp_path / "shopify"
    write_shopify_export(generated_data / "raw", raw)
    done = _quick_run(tmp_path, raw, "--mapping", "shopify_orders")
    assert done.returncode == 0, done.stderr
    ((n_features,),) = _query(tmp_path, "select count(*) from ml.customer_features")
    ((n_scores, n_segments),) = _query(
        tmp_path,
        "select count(*), count(distinct segment_name) from predictions.customer_scores",
    )
    assert n_scores == n_features > 1000 and n_segments >= 2
    assert (tmp_path / "reports" / "segmart_report.html").is_file()
    # Emails were hashed on landing: no raw table holds an address.
    ((n_with_at,),) = _query(
        tmp_path, "select count(*) from raw.customers where customer_id like '%@%'"
    )
    assert n_with_at == 0
    ((n_audience,),) = _query(tmp_path, "select count(*) from marketing.campaign_audiences")
    assert n_audience > 0  # Accepts Marketing is the consent
    statuses = dict(_query(tmp_path, "select status, count(*) from core.orders group by 1"))
    assert set(statuses) == {"completed", "cancelled", "returned"}


def test_a_european_latin1_export_keeps_every_accented_customer_and_their_orders(
    generated_data: Path, tmp_path: Path
) -> None:
    raw = write_european_export(generated_data / "raw", tmp_path / "eu")
    done = _quick_run(tmp_path, raw, "--mapping", str(raw / "mapping.yml"))
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "reports" / "segmart_report.html").is_file()
    ((n_features, n_scores, n_audience),) = _query(
        tmp_path,
        "select (select count(*) from ml.customer_features),"
        " (select count(segment_name) from predictions.customer_scores),"
        " (select count(*) from marketing.campaign_audiences)",
    )
    assert n_scores == n_features > 1000 and n_audience > 0
    cities = "', '".join(ACCENTED_CITIES)
    ((n_accented, n_orders),) = _query(
        tmp_path,
        # The city stays in staging: BI's core.customers holds the region only.
        "select count(distinct customers.customer_id), count(orders.order_id)"
        " from staging.stg_shop__customers as customers"
        " inner join core.customers as published using (customer_id)"
        " left join core.orders as orders using (customer_id)"
        f" where customers.city in ('{cities}')",
    )
    kunden = [line.split(";") for line in _latin1_lines(raw / "kunden.csv")]
    accented = {row[0] for row in kunden if row[2] in ACCENTED_CITIES}
    expected_orders = sum(
        line.split(";")[1] in accented for line in _latin1_lines(raw / "bestellungen.csv")
    )
    assert (n_accented, n_orders) == (50, expected_orders)
    regions = {r for (r,) in _query(tmp_path, "select distinct region from core.customers")}
    assert regions == {"bayern", "île-de-france", "tirol"}
    assert _query(tmp_path, "select count(*) from core.quarantined_values") == [(0,)]


def test_an_undeclared_latin1_city_costs_the_value_not_the_customer(
    generated_data: Path, tmp_path: Path
) -> None:
    raw = write_european_export(generated_data / "raw", tmp_path / "eu", n_accented=50)
    # No mapping: the user renamed the files to the contract but kept the Latin-1 bytes.
    contract = tmp_path / "contract"
    contract.mkdir()
    con = duckdb.connect()
    n_rows = {}
    for source, target, columns in (
        ("kunden", "customers", 'Kundennummer as customer_id, "Ort" as city'),
        ("bestellungen", "orders", "Kundennummer as customer_id, Bestellnummer as order_id"),
    ):
        text = (raw / f"{source}.csv").read_bytes().decode("latin-1")
        latin = tmp_path / f"{source}.utf8.csv"
        latin.write_text(text, encoding="utf-8")
        rows = con.execute(
            f"select {columns} from read_csv('{latin}', delim=';', all_varchar=true)"
        ).fetch_df()
        if target == "orders":
            rows["ordered_at"] = "2024-05-01 10:00:00"
        else:
            rows["created_at"] = "2024-01-01 10:00:00"
        n_rows[target] = len(rows)
        (contract / f"{target}.csv").write_bytes(rows.to_csv(index=False).encode("latin-1"))
    done = segmart(tmp_path, "build", "--raw-dir", str(contract), "--as-of", AS_OF)
    assert done.returncode == 0, done.stderr
    ((n_customers,),) = _query(tmp_path, "select count(*) from core.customers")
    assert n_customers == n_rows["customers"]
    notes = _query(
        tmp_path,
        "select count(distinct row_key) from core.quarantined_values"
        " where column_name = 'city' and rule = 'undecodable_value'",
    )
    assert notes == [(50,)]
    assert _query(tmp_path, "select count(*) from core.orders") == [(n_rows["orders"],)]


def _write_big_events(path: Path, n_rows: int) -> None:
    lines = ["event_id,customer_id,session_id,event_type,event_at,product_id"]
    for k in range(n_rows):
        if k % 97_000 == 50_000:  # malformed lines scattered across read buffers
            lines.append(f"E{k:012d},C0000001,broken")
        else:
            lines.append(
                f"E{k:012d},C{k % 3000:07d},S{k // 5:011d},page_view,2025-01-01 10:00:00,"
            )
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_a_csv_several_read_buffers_long_lands_the_same_every_time(
    tmp_path: Path,
) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "orders.csv").write_text(
        "order_id,customer_id,ordered_at,order_total\nO1,C0000001,2025-01-01 10:00:00,10\n"
    )
    _write_big_events(raw / "web_events.csv", 420_000)
    assert (raw / "web_events.csv").stat().st_size > 3 * 8_000_000
    digests = set()
    for attempt in range(3):
        done = (
            segmart(
                tmp_path,
                "build",
                "--raw-dir",
                str(raw),
                "--as-of",
                AS_OF,
            )
            if attempt == 0
            else _landing_only(tmp_path, raw)
        )
        assert done.returncode == 0, done.stderr
        rows = _query(
            tmp_path,
            "select (select count(*) from raw.web_events),"
            " (select string_agg(line::varchar, ',' order by line) from raw.csv_rejects),"
            " (select sum(hash(event_id, customer_id, event_at)) from raw.web_events)",
        )
        digests.add(hashlib.sha256(repr(rows).encode()).hexdigest())
        assert rows[0][0] == 420_000 - 4  # k = 50,000, 147,000, 244,000 and 341,000
    assert len(digests) == 1


def _landing_only(workspace: Path, raw: Path) -> subprocess.CompletedProcess[str]:
    """Re-run the landing hook alone (it runs before any dbt command)."""
    env = os.environ | {
        "SEGMART_WAREHOUSE": str(workspace / "segmart.duckdb"),
        "SEGMART_RAW_DIR": str(raw),
    }
    project = Path(__file__).resolve().parents[2] / "dbt_project"
    return subprocess.run(
        [
            str(SEGMART.with_name("dbt")),
            "run",
            "--select",
            "base_shop__customer_ids",
            "--project-dir",
            str(project),
            "--profiles-dir",
            str(project.parent),
            "--quiet",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_slash_dates_without_a_stated_order_are_a_one_line_error(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "transactions.csv").write_text(
        "customer_id,date,amount\nC1,01/02/1997,10.00\nC2,03/04/1997,5.00\n"
    )
    done = segmart(tmp_path, "build", "--raw-dir", str(raw))
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "01/02/1997" in lines[0] and "timestamp_format" in lines[0]


def _generated_shape(tmp_path: Path, shape: str, n_customers: int) -> Path:
    from scripts.generate import generate

    out = tmp_path / shape
    generate(n_customers, 5, out, "csv", shape=shape)
    return out / "raw"


def _roc_auc(label: list[bool], score: list[float]) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(label, score))


def test_a_transaction_log_alone_runs_and_the_model_beats_recency_out_of_time(
    tmp_path: Path,
) -> None:
    raw = _generated_shape(tmp_path, "transactions", 3000)
    assert sorted(p.name for p in raw.iterdir()) == ["transactions.csv"]
    done = segmart(tmp_path, "run", "--raw-dir", str(raw), "--as-of", AS_OF)
    assert done.returncode == 0, done.stderr
    assert "no customer has marketing consent" in done.stderr
    assert (tmp_path / "reports" / "segmart_report.html").is_file()
    # Out of time: the purchases realised in the 90 days after as_of, read from the log itself.
    rows = _query(
        tmp_path,
        "select scores.purchase_probability, features.days_since_last_order,"
        " exists (select 1 from read_csv("
        f"'{raw / 'transactions.csv'}', all_varchar=true) as log"
        " where log.customer_id = scores.customer_id"
        f" and strptime(log.date, '%Y%m%d') >= date '{AS_OF}'"
        f" and strptime(log.date, '%Y%m%d') < date '{AS_OF}' + interval 90 day) as bought"
        " from predictions.customer_scores as scores"
        " inner join ml.customer_features as features using (customer_id)",
    )
    ((n_features,),) = _query(tmp_path, "select count(*) from ml.customer_features")
    assert len(rows) == n_features > 500
    bought = [row[2] for row in rows]
    model = _roc_auc(bought, [row[0] for row in rows])
    recency = _roc_auc(bought, [-row[1] for row in rows])
    assert model > recency, (model, recency)


def test_the_minimal_shape_runs_without_consent_with_a_score_for_every_customer(
    tmp_path: Path,
) -> None:
    raw = _generated_shape(tmp_path, "minimal", 1500)
    assert sorted(p.name for p in raw.iterdir()) == ["customers.csv", "orders.csv"]
    done = _quick_run(tmp_path, raw)
    assert done.returncode == 0, done.stderr
    assert "no customer has marketing consent" in done.stderr
    ((n_features,),) = _query(tmp_path, "select count(*) from ml.customer_features")
    ((n_scores, n_named),) = _query(
        tmp_path,
        "select count(*), count(segment_name) from predictions.customer_scores",
    )
    assert n_scores == n_named == n_features > 500
    assert _query(tmp_path, "select count(*) from marketing.campaign_audiences") == [(0,)]


def test_a_few_percent_of_unparsable_dates_are_quarantined_with_a_warning_naming_the_share(
    tmp_path: Path,
) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    lines = ["customer_id,date,amount"]
    for k in range(400):
        day = f"01/0{1 + k % 9}/2025" if k % 20 == 0 else f"2025{1 + k % 9:02d}{1 + k % 28:02d}"
        lines.append(f"C{k % 150:04d},{day},{10 + k % 7}.50")
    (raw / "transactions.csv").write_text("\n".join(lines) + "\n")
    done = segmart(tmp_path, "build", "--raw-dir", str(raw), "--as-of", "2025-12-01")
    assert done.returncode == 0, done.stderr
    warnings = [line for line in done.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1
    assert "orders: 5.0% of rows quarantined as invalid_ordered_at" in warnings[0]
    assert "timestamp_format" in warnings[0]
    assert _query(
        tmp_path,
        "select count(*) from core.quarantined_rows where rule = 'invalid_ordered_at'",
    ) == [(20,)]


def test_orders_without_amounts_run_with_revenue_imputed_and_a_note(
    generated_data: Path, tmp_path: Path
) -> None:
    # The generated shop (with consent) without the order_total column.
    raw = tmp_path / "raw"
    shutil.copytree(generated_data / "raw", raw)
    orders = pq.read_table(raw / "orders.parquet")
    pq.write_table(orders.drop_columns(["order_total"]), raw / "orders.parquet")
    done = _quick_run(tmp_path, raw)
    assert done.returncode == 0, done.stderr
    assert "note: the orders carry no amounts (no order_total)" in done.stderr
    ((n_buyers, n_missing, n_values),) = _query(
        tmp_path,
        "select count(*) filter (where n_orders > 0),"
        " count(*) filter (where n_orders > 0 and revenue_was_missing),"
        " count(distinct revenue) filter (where n_orders > 0)"
        " from ml.customer_features",
    )
    assert n_buyers > 1000 and n_missing == n_buyers and n_values == 1  # the imputed value
    audiences = dict(
        _query(tmp_path, "select audience, count(*) from marketing.campaign_audiences group by 1")
    )
    # Spend cannot tell customers apart: no vip, so vip_care is empty; the others still select.
    assert "vip_care" not in audiences and sum(audiences.values()) > 100
