"""A run that degrades instead of failing: no marketing consent, no optional tables.

Both shops are cut from one small generated shop by deleting what a real export often lacks, and
run through the real CLI (`segmart run` in a subprocess, so stdout and stderr are what a user
sees): the run succeeds, scores every customer, builds every marketing mart (empty where the
data cannot fill it), says why in one line per gap, and the report says it again in place of
the sections it cannot draw.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest

pytestmark = pytest.mark.integration

N_CUSTOMERS = 1_000
SEED = 3
SEGMART = Path(sys.executable).with_name("segmart")
CONSENT_WARNING = (
    "warning: no customer has marketing consent (no marketing_opt_in column): audiences are"
    " empty; map a consent column to select audiences"
)


@dataclass(frozen=True)
class Run:
    """One `segmart run` of a cut-down shop: its output streams and where its results went."""

    root: Path
    returncode: int
    stdout: str
    stderr: str

    @property
    def published(self) -> Path:
        return self.root / "published" / "segmart_bi.duckdb"

    @property
    def report(self) -> str:
        return (self.root / "reports" / "segmart_report.html").read_text(encoding="utf-8")

    def rows(self, sql: str) -> list[tuple]:
        with duckdb.connect(str(self.published), read_only=True) as con:
            return con.execute(sql).fetchall()

    def section(self, name: str) -> str:
        """The report's section of one chart, from its opening tag to its end."""
        match = re.search(
            rf'<section class="segmart-chart" id="chart-{name}".*?</section>', self.report, re.S
        )
        assert match, f"the report has no section chart-{name}"
        return match[0]


def segmart_run(raw_dir: Path, root: Path) -> Run:
    """`segmart run` on raw_dir with every output under root, as a user would type it."""
    env = os.environ | {
        "SEGMART_WAREHOUSE": str(root / "warehouse" / "segmart.duckdb"),
        "SEGMART_MODELS_DIR": str(root / "models"),
        "SEGMART_PUBLISHED_DIR": str(root / "published"),
        "SEGMART_REPORTS_DIR": str(root / "reports"),
        "SEGMART_EXPORTS_DIR": str(root / "exports"),
        "COLUMNS": "80",  # a narrow terminal: a warning must still be one line
    }
    env.pop("SEGMART_DEBUG", None)
    done = subprocess.run(
        [str(SEGMART), "run", "--raw-dir", str(raw_dir), "--algorithm", "logistic_regression"],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    return Run(root, done.returncode, done.stdout, done.stderr)


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small generated shop with every table (Parquet)."""
    out = tmp_path_factory.mktemp("shop")
    command = ["generate", "--customers", str(N_CUSTOMERS), "--seed", str(SEED), "--out", str(out)]
    subprocess.run([str(SEGMART), *command], check=True, capture_output=True)
    return out / "raw"


@pytest.fixture(scope="module")
def no_consent(shop: Path, tmp_path_factory: pytest.TempPathFactory) -> Run:
    """Every table, but customers as a CSV without the marketing_opt_in column (a real export)."""
    root = tmp_path_factory.mktemp("no_consent")
    raw = root / "raw"
    raw.mkdir()
    for path in shop.iterdir():
        if path.name != "customers.parquet":
            (raw / path.name).symlink_to(path)
    customers = pq.read_table(shop / "customers.parquet").drop_columns(["marketing_opt_in"])
    pa_csv.write_csv(customers, raw / "customers.csv")
    return segmart_run(raw, root)


@pytest.fixture(scope="module")
def customers_and_orders(shop: Path, tmp_path_factory: pytest.TempPathFactory) -> Run:
    """Only the required tables: customers (with consent) and orders."""
    root = tmp_path_factory.mktemp("customers_and_orders")
    raw = root / "raw"
    raw.mkdir()
    for name in ("customers.parquet", "orders.parquet"):
        (raw / name).symlink_to(shop / name)
    return segmart_run(raw, root)


def assert_every_customer_is_scored_and_segmented(run: Run) -> None:
    assert run.returncode == 0, run.stderr
    [(n_customers, n_scored, n_missing)] = run.rows(
        "select (select count(*) from core.customers), count(*),"
        " count(*) filter (where customer_id not in (select customer_id from core.customers))"
        " from predictions.customer_scores"
    )
    assert n_customers > 0.9 * N_CUSTOMERS
    assert (n_scored, n_missing) == (n_customers, 0)
    [(n_unscored,)] = run.rows(
        "select count(*) from core.customers where customer_id not in"
        " (select customer_id from predictions.customer_scores)"
    )
    assert n_unscored == 0
    names = [name for (name,) in run.rows("select segment_name from marketing.segment_summary")]
    assert len(names) >= 2 and all(names) and len(set(names)) == len(names)


def lines_about(stream: str, *words: str) -> list[str]:
    """The lines of a stream that mention any of `words` (other steps may warn too: drift)."""
    return [line for line in stream.splitlines() if any(word in line for word in words)]


# --- no consent column ------------------------------------------------------------------------


def test_a_shop_without_consent_runs_and_scores_every_customer(no_consent: Run) -> None:
    assert_every_customer_is_scored_and_segmented(no_consent)


def test_the_missing_consent_is_one_warning_line_on_stderr_and_in_the_summary(
    no_consent: Run,
) -> None:
    # One line, even at 80 columns: no fragment of it on another line.
    assert lines_about(no_consent.stderr, "marketing consent", "audiences are empty") == [
        CONSENT_WARNING
    ]
    assert CONSENT_WARNING in no_consent.stdout.splitlines()
    assert "(empty files: no customer has marketing consent)" in no_consent.stdout


def test_without_consent_the_marketing_marts_are_published_empty_but_present(
    no_consent: Run,
) -> None:
    tables = {
        name
        for (name,) in no_consent.rows(
            "select table_name from duckdb_tables() where schema_name = 'marketing'"
        )
    }
    assert {"campaign_audiences", "audience_candidates", "audience_summary"} <= tables
    [(n_selected,)] = no_consent.rows("select count(*) from marketing.campaign_audiences")
    [(n_candidates,)] = no_consent.rows("select count(*) from marketing.audience_candidates")
    assert (n_selected, n_candidates) == (0, 0)
    # Every playbook audience is listed, with nobody in it.
    [(n_audiences, n_in_audiences)] = no_consent.rows(
        "select count(*), sum(n_customers) from marketing.audience_summary"
    )
    assert n_audiences >= 3 and n_in_audiences == 0
    # Recommendations and campaigns do not depend on consent: still filled.
    [(n_recommended,)] = no_consent.rows("select count(*) from marketing.customer_recommendations")
    [(n_campaigns,)] = no_consent.rows("select count(*) from marketing.campaign_results")
    assert n_recommended > 0 and n_campaigns > 0


def test_without_consent_the_report_says_why_in_place_of_the_audience_chart(
    no_consent: Run,
) -> None:
    audiences = no_consent.section("audiences")
    assert 'class="chart-gap"' in audiences and 'id="plot-audiences"' not in audiences
    assert (
        "No customer has marketing consent (no marketing_opt_in column), so no audience was"
        " selected: map a consent column to select audiences." in audiences
    )
    for name in ("segment-sizes", "recommendations", "campaigns"):
        assert f'id="plot-{name}"' in no_consent.section(name)


def test_without_consent_the_export_is_empty_files_and_a_manifest_saying_why(
    no_consent: Run,
) -> None:
    [export] = list((no_consent.root / "exports").iterdir())
    manifest = json.loads((export / "_manifest.json").read_text())
    assert manifest["note"].startswith("No customer has marketing consent")
    assert manifest["audiences"] and manifest["holdout"]["n_customers"] == 0
    for name, audience in manifest["audiences"].items():
        assert audience["n_customers"] == 0
        assert pq.read_table(export / f"{name}.parquet").num_rows == 0
        assert pa_csv.read_csv(export / f"{name}.csv").num_rows == 0


# --- only customers and orders ----------------------------------------------------------------


def test_a_shop_of_customers_and_orders_runs_and_scores_every_customer(
    customers_and_orders: Run,
) -> None:
    assert_every_customer_is_scored_and_segmented(customers_and_orders)


def test_each_missing_optional_table_is_one_note_line_and_consent_is_not_mentioned(
    customers_and_orders: Run,
) -> None:
    notes = [
        "note: no campaign touches were loaded: campaign results are empty",
        "note: no order items or products were loaded: product recommendations are empty",
        "note: no web events were loaded: browsing features are null and imputed",
    ]
    stderr = customers_and_orders.stderr
    assert [line for line in stderr.splitlines() if line.startswith("note:")] == notes
    assert set(notes) <= set(customers_and_orders.stdout.splitlines())
    assert not lines_about(stderr, "marketing consent", "audiences are empty")


def test_without_optional_tables_their_marts_are_published_empty_and_audiences_selected(
    customers_and_orders: Run,
) -> None:
    [(n_recommended,)] = customers_and_orders.rows(
        "select count(*) from marketing.customer_recommendations"
    )
    [(n_campaigns,)] = customers_and_orders.rows("select count(*) from marketing.campaign_results")
    [(n_selected, n_categorised)] = customers_and_orders.rows(
        "select count(*), count(recommended_category_1) from marketing.campaign_audiences"
    )
    assert (n_recommended, n_campaigns) == (0, 0)
    assert n_selected > 0 and n_categorised == 0
    [export] = list((customers_and_orders.root / "exports").iterdir())
    assert "note" not in json.loads((export / "_manifest.json").read_text())


def test_without_optional_tables_the_report_replaces_their_sections_by_one_sentence(
    customers_and_orders: Run,
) -> None:
    run = customers_and_orders
    assert "No campaign touches were loaded: campaign results are empty." in run.section(
        "campaigns"
    )
    recommendations = run.section("recommendations")
    assert "No order items or products were loaded: product recommendations" in recommendations
    for name in ("campaigns", "recommendations"):
        assert f'id="plot-{name}"' not in run.section(name)
    assert 'id="plot-audiences"' in run.section("audiences")
    notes = re.search(r'<ul class="notes">(.*?)</ul>', run.report, re.S)
    assert (
        notes
        and "No web events were loaded: browsing features are null and imputed." in (notes[1])
    )
