"""Generator shapes: a CDNOW-style purchase log of one cohort, and a customers-and-orders shop."""

from __future__ import annotations

import csv
import json
from collections import Counter
from datetime import date
from itertools import pairwise
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from sklearn.metrics import roc_auc_score
from typer.testing import CliRunner

from scripts import dirt
from scripts.generate import COHORT_DAYS, DATA_END, DATA_START, SCHEMAS, SHAPES, generate
from scripts.ground_truth import load_ground_truth, load_uplift_windows, true_purchase_probability

N_CUSTOMERS = 4_000
SEED = 21
CHUNK = 1_500


@pytest.fixture(scope="module")
def transactions(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("transactions")
    # Parquet is asked for on purpose: the transactions shape is CSV whatever the format.
    generate(N_CUSTOMERS, SEED, out, fmt="parquet", chunk_size=CHUNK, shape="transactions")
    return out


@pytest.fixture(scope="module")
def log(transactions: Path) -> pd.DataFrame:
    frame = pd.read_csv(transactions / "raw" / "transactions.csv", dtype=str)
    frame["day"] = pd.to_datetime(frame["date"], format="%Y%m%d")
    return frame


@pytest.fixture(scope="module")
def minimal(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("minimal")
    generate(N_CUSTOMERS, SEED, out, chunk_size=CHUNK, shape="minimal")
    return out


@pytest.fixture(scope="module")
def standard_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("standard_csv")
    generate(N_CUSTOMERS, SEED, out, fmt="csv", chunk_size=CHUNK)
    return out


def _raw_files(out: Path) -> list[str]:
    return sorted(path.name for path in (out / "raw").iterdir())


def _header(path: Path) -> list[str]:
    with path.open(newline="") as file:
        return next(csv.reader(file))


def _malformed(out: Path) -> dict[str, list[int]]:
    return json.loads((out / "ground_truth" / "malformed_csv_lines.json").read_text())


def _clean_csv(out: Path, name: str) -> pa.Table:
    """A raw CSV without its listed malformed lines, typed by the contract."""
    skip = set(_malformed(out).get(name, []))
    lines = (out / "raw" / f"{name}.csv").read_bytes().split(b"\n")
    kept = b"\n".join(line for number, line in enumerate(lines, start=1) if number not in skip)
    types = {
        field.name: pa.timestamp("s") if pa.types.is_timestamp(field.type) else field.type
        for field in SCHEMAS[name]
    }
    return pacsv.read_csv(
        pa.py_buffer(kept),
        convert_options=pacsv.ConvertOptions(
            column_types=types, strings_can_be_null=True, quoted_strings_can_be_null=False
        ),
    )


# --------------------------------------------------------------------------------------------
# transactions


def test_transactions_shape_writes_one_unquoted_csv_with_the_cdnow_header(
    transactions: Path,
) -> None:
    assert _raw_files(transactions) == ["transactions.csv"]
    text = (transactions / "raw" / "transactions.csv").read_text()
    assert text.startswith("customer_id,date,amount\n")
    assert '"' not in text
    meta = json.loads((transactions / "ground_truth" / "meta.json").read_text())
    assert (meta["shape"], meta["fmt"]) == ("transactions", "csv")


def test_transaction_dates_are_yyyymmdd_and_amounts_have_two_decimals(log: pd.DataFrame) -> None:
    assert log["date"].str.fullmatch(r"\d{8}").all()
    assert log["day"].min() >= pd.Timestamp(DATA_START)
    assert log["day"].max() < pd.Timestamp(DATA_END)
    assert log["amount"].str.fullmatch(r"\d+\.\d{2}").all()
    assert (log["amount"].astype(float) > 0).all()


def test_every_customer_is_acquired_in_the_same_few_weeks_at_the_start(
    transactions: Path, log: pd.DataFrame
) -> None:
    truth = load_ground_truth(transactions)
    cohort_end = pd.Timestamp(DATA_START) + pd.Timedelta(days=COHORT_DAYS)
    assert truth["created_at"].max() < cohort_end
    first_purchase = log.groupby("customer_id")["day"].min()
    # Everyone buys first within days of signing up (mean delay 1.5 days), so within the
    # cohort weeks plus a margin, and keeps buying until the end of the calendar.
    assert first_purchase.max() < cohort_end + pd.Timedelta(days=21)
    assert (first_purchase < cohort_end).mean() > 0.95
    assert log["day"].max() >= pd.Timestamp(DATA_END) - pd.Timedelta(days=31)
    assert set(first_purchase.index) == set(truth.index)


def test_transactions_log_holds_purchases_only_and_some_exact_duplicate_lines(
    transactions: Path,
) -> None:
    truth = load_ground_truth(transactions)
    assert (truth["cancel_prob"] == 0).all()
    lines = (transactions / "raw" / "transactions.csv").read_text().splitlines()[1:]
    counts = Counter(lines)
    repeated = [line for line, count in counts.items() if count > 1]
    assert repeated, "expected a few exact duplicate lines"
    assert max(counts.values()) == 2
    distinct = len(counts)
    tolerance = 5 * np.sqrt(distinct * dirt.DIRT_RATES["orders_duplicate"]) + 2
    assert abs(len(repeated) - distinct * dirt.DIRT_RATES["orders_duplicate"]) <= tolerance
    # A duplicate is written right after its original.
    adjacent = {a for a, b in pairwise(lines) if a == b}
    assert adjacent == set(repeated)


@pytest.mark.parametrize(
    ("start", "horizon_days"), [(date(2024, 9, 1), 30), (date(2025, 6, 1), 60)]
)
def test_oracle_matches_the_purchases_in_the_transactions_log(
    transactions: Path, log: pd.DataFrame, start: date, horizon_days: int
) -> None:
    truth = load_ground_truth(transactions)
    windows = load_uplift_windows(transactions)
    assert windows.empty
    probability = true_purchase_probability(truth, start, horizon_days, windows)
    low = pd.Timestamp(start)
    in_window = log[(log["day"] >= low) & (log["day"] < low + pd.Timedelta(days=horizon_days))]
    bought = probability.index.isin(in_window["customer_id"])
    standard_error = np.sqrt((probability * (1 - probability)).sum()) / len(probability)
    assert abs(bought.mean() - probability.mean()) < 4 * standard_error + 0.005
    assert roc_auc_score(bought, probability) > 0.75


def test_transactions_shop_has_no_campaigns(transactions: Path) -> None:
    meta = json.loads((transactions / "ground_truth" / "meta.json").read_text())
    assert meta["campaigns_affect_purchases"] is False
    assert pq.read_metadata(transactions / "ground_truth" / "campaigns.parquet").num_rows == 0


# --------------------------------------------------------------------------------------------
# minimal


def test_minimal_shape_writes_customers_and_orders_with_required_columns_only(
    minimal: Path,
) -> None:
    assert _raw_files(minimal) == ["customers.csv", "orders.csv"]
    assert _header(minimal / "raw" / "customers.csv") == ["customer_id", "created_at"]
    assert _header(minimal / "raw" / "orders.csv") == [
        "order_id",
        "customer_id",
        "ordered_at",
        "status",
        "order_total",
    ]
    assert {name: list(columns) for name, columns in SHAPES["minimal"].items()} == {
        "customers": _header(minimal / "raw" / "customers.csv"),
        "orders": _header(minimal / "raw" / "orders.csv"),
    }


def test_minimal_shop_is_the_standard_shop_cut_down(minimal: Path, standard_csv: Path) -> None:
    for name, columns in SHAPES["minimal"].items():
        cut = _clean_csv(standard_csv, name).select(list(columns))
        assert _clean_csv(minimal, name).equals(cut), name
        assert _malformed(minimal)[name] == _malformed(standard_csv)[name], name


# --------------------------------------------------------------------------------------------
# every shape


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_every_shape_gives_identical_files_for_the_same_arguments(
    tmp_path: Path, shape: str
) -> None:
    contents = []
    for attempt in ("first", "second"):
        out = tmp_path / attempt
        generate(1_200, 4, out, fmt="csv", chunk_size=500, shape=shape)
        contents.append(
            {
                str(path.relative_to(out)): pq.read_table(path).to_pydict()
                if path.suffix == ".parquet"
                else path.read_bytes()
                for path in sorted(out.rglob("*"))
                if path.is_file()
            }
        )
    assert contents[0] == contents[1]
    assert {f"raw/{name}.csv" for name in SHAPES[shape]} <= set(contents[0])


def test_unknown_shape_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="shape"):
        generate(10, 1, tmp_path, shape="wide")  # type: ignore[arg-type]


def test_cli_generate_writes_the_requested_shape(tmp_path: Path) -> None:
    from ml.cli import app

    result = CliRunner().invoke(
        app, ["generate", "--customers", "300", "--out", str(tmp_path), "--shape", "minimal"]
    )
    assert result.exit_code == 0, result.output
    assert _raw_files(tmp_path) == ["customers.csv", "orders.csv"]


def test_first_purchase_never_precedes_signup_and_follows_within_days(
    transactions: Path, log: pd.DataFrame
) -> None:
    first_purchase = log.groupby("customer_id")["day"].min()
    signup_day = load_ground_truth(transactions)["created_at"].dt.normalize()
    delay_days = (first_purchase - signup_day.reindex(first_purchase.index)).dt.days
    assert (delay_days >= 0).all()
    assert delay_days.median() <= 2
