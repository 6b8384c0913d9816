"""Privacy: BI never sees contact details, and `segmart forget` removes a customer everywhere.

The published copy is privacy-minimal: every column of every published table is on an allow-list
(a new column is a decision, not an accident), the customer dimension shows bands instead of a
birth date and an income, no city, and an email hash keyed with the workspace's secret.

The good run's raw customers carry an email (contract column), a first name and a phone number
(extra columns the contract does not know, see `add_contact_columns`). No value in the published
BI file or the audience exports may hold any of them. Forgetting a customer removes them from
every derived table, score, audience, export and the published file, and rebuilding from the
same raw files (which still hold them) does not bring them back.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ml.config import HASH_KEY_FILE
from tests.reliability.conftest import Workspace, assert_clean_success, base_tables

pytestmark = pytest.mark.integration

EMAIL = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"
# International format (a bare run of digits is an id or a hash more often than a phone), and
# the raw phones of the good run's customers with or without their spaces.
PHONE = r"\+\d{1,3}[ .-]?\(?\d{1,4}\)?([ .-]?\d{2,5}){1,4}"
RAW_PHONE = r"7700 ?9\d{5}"


def _text_columns(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    schema, name = table.split(".")
    return [
        column
        for (column,) in con.execute(
            "select column_name from information_schema.columns where table_schema = ?"
            " and table_name = ? and data_type = 'VARCHAR'",
            [schema, name],
        ).fetchall()
    ]


def _matches(con: duckdb.DuckDBPyConnection, pattern: str, tables: list[str]) -> dict[str, int]:
    """Rows per table.column whose text value matches `pattern` (a regex) anywhere."""
    found = {}
    for table in tables:
        for column in _text_columns(con, table):
            (n,) = con.execute(
                f'select count(*) from {table} where regexp_matches("{column}", ?)', [pattern]
            ).fetchall()[0]
            if n:
                found[f"{table}.{column}"] = n
    return found


def _raw_contacts(raw_dir: Path) -> tuple[list[str], list[str]]:
    customers = pq.read_table(raw_dir / "customers.parquet", columns=["first_name", "phone"])
    return (
        sorted(set(customers.column("first_name").to_pylist())),
        customers.column("phone").to_pylist(),
    )


def _export_texts(exports_dir: Path) -> dict[Path, str]:
    texts = {}
    for path in sorted(exports_dir.rglob("*")):
        if path.suffix == ".parquet":
            texts[path] = pq.read_table(path).to_pandas().to_csv(index=False)
        elif path.is_file():
            texts[path] = path.read_text()
    return texts


def test_no_bi_table_or_export_holds_an_email_a_name_or_a_phone(good_run: Workspace) -> None:
    names, phones = _raw_contacts(good_run.raw_dir)
    assert phones and all(re.fullmatch(PHONE, phone) for phone in phones)
    name_pattern = r"\b(" + "|".join(names) + r")\b"
    with duckdb.connect(str(good_run.published), read_only=True) as con:
        tables = base_tables(con)
        assert tables, "nothing was published"
        columns = {
            column
            for table in tables
            for column in _text_columns(con, table)
            + [
                c
                for (c,) in con.execute(
                    "select column_name from information_schema.columns"
                    " where table_schema || '.' || table_name = ?",
                    [table],
                ).fetchall()
            ]
        }
        assert not columns & {"email", "first_name", "phone", "name", "raw_record"}
        assert _matches(con, EMAIL, tables) == {}
        assert _matches(con, PHONE, tables) == {}
        assert _matches(con, RAW_PHONE, tables) == {}
        assert _matches(con, name_pattern, tables) == {}
    exports = _export_texts(good_run.exports_dir)
    assert exports, "nothing was exported"
    for path, text in exports.items():
        assert not re.search(EMAIL, text), path
        assert not re.search(PHONE, text), path
        assert not re.search(RAW_PHONE, text), path
        assert not re.search(name_pattern, text), path


# Every column BI may read, per published table; marketing.* is published whole. Direct
# identifiers (email, name, phone, address) and full-precision quasi-identifiers (birth date,
# income, city) must never be added here.
# fmt: off
PUBLISHED_COLUMNS: dict[str, set[str]] = {
    "core.customers": {
        "customer_id", "email_hash", "gender", "region", "acquisition_channel", "age_band",
        "income_band", "n_orders", "n_purchases", "lifetime_value", "is_marketing_opt_in",
        "created_at", "updated_at", "first_ordered_on", "last_ordered_on"
    },
    "core.data_reconciliation": {
        "source_table", "n_raw_rows", "n_accepted", "n_duplicates", "n_quarantined",
        "is_reconciled"
    },
    "core.orders": {
        "order_id", "customer_id", "status", "channel", "order_total", "discount_total",
        "n_lines", "n_units", "is_counted_purchase", "ordered_at", "ordered_on"
    },
    "marketing.audience_candidates": {
        "customer_id", "audience", "model_id", "channel", "offer", "selection", "segment_name",
        "rfm_group", "lifecycle_stage", "priority", "audience_rank", "propensity_decile",
        "purchase_probability", "predicted_order_value", "expected_value", "control_share",
        "control_draw", "n_recent_contacts", "is_selected", "is_control", "as_of"
    },
    "marketing.audience_lift": {
        "campaign_key", "audience_id", "channel", "conclusion", "n_treatment", "n_control",
        "n_touched_customers", "n_converted_treatment", "n_converted_control",
        "conversion_rate_treatment", "conversion_rate_control", "conversion_lift",
        "conversion_lift_standard_error", "conversion_lift_ci_low", "conversion_lift_ci_high",
        "revenue_per_treated_customer", "revenue_per_control_customer", "revenue_lift",
        "revenue_lift_ci_low", "revenue_lift_ci_high", "conversion_window_days",
        "min_group_size", "is_too_small_to_conclude", "is_conversion_lift_significant",
        "is_revenue_lift_significant", "is_window_complete", "exported_on", "first_sent_at",
        "as_of"
    },
    "marketing.audience_summary": {
        "audience", "model_id", "description", "channel", "offer", "priority", "max_size",
        "control_share", "n_matching", "n_over_contact_cap", "n_assigned", "n_customers",
        "n_treatment", "n_control",
        "observed_control_share", "expected_value_treatment", "mean_purchase_probability",
        "n_unmatched_segment_names", "is_capped", "as_of"
    },
    "marketing.campaign_audiences": {
        "customer_id", "audience", "model_id", "channel", "offer", "segment_name", "rfm_group",
        "lifecycle_stage", "recommended_category_1", "recommended_category_2",
        "recommended_category_3", "priority", "audience_rank", "propensity_decile",
        "purchase_probability", "predicted_order_value", "expected_value", "is_control", "as_of"
    },
    "marketing.campaign_results": {
        "campaign_id", "channel", "n_treatment", "n_control", "n_converted_treatment",
        "n_converted_control", "conversion_rate_treatment", "conversion_rate_control",
        "absolute_lift", "relative_lift", "lift_standard_error", "absolute_lift_ci_low",
        "absolute_lift_ci_high", "revenue_per_treated_customer", "revenue_per_control_customer",
        "conversion_window_days", "is_significant", "is_window_complete", "first_sent_at",
        "last_sent_at", "as_of"
    },
    "marketing.customer_recommendations": {
        "customer_id", "category", "source", "rank", "score", "as_of"
    },
    "marketing.lifecycle_summary": {
        "lifecycle_stage", "display_order", "n_customers", "customer_share",
        "mean_days_since_last_order", "mean_n_orders", "revenue", "revenue_share",
        "mean_purchase_probability", "as_of"
    },
    "marketing.rfm_group_summary": {
        "rfm_group", "display_order", "n_customers", "customer_share", "mean_recency_score",
        "mean_frequency_score", "mean_monetary_score", "mean_days_since_last_order",
        "mean_n_orders", "revenue", "revenue_share", "mean_purchase_probability", "as_of"
    },
    "marketing.rfm_scores": {
        "customer_id", "rfm_cell", "rfm_group", "lifecycle_stage", "recency_score",
        "frequency_score", "monetary_score", "days_since_last_order", "n_orders", "n_orders_90d",
        "revenue", "tenure_days", "as_of"
    },
    "marketing.segment_summary": {
        "segment_id", "model_id", "segment_name", "description", "most_common_rfm_group",
        "n_customers", "n_opted_in", "n_in_audiences", "customer_share",
        "mean_purchase_probability", "expected_buyers", "expected_value", "predicted_clv",
        "revenue", "revenue_share", "mean_n_orders", "mean_days_since_last_order", "as_of"
    },
    "marketing.segment_membership_history": {
        "segment_id", "model_id", "segment_name", "n_customers", "customer_share",
        "predicted_revenue", "as_of", "scored_at"
    },
    "marketing.segment_transitions": {
        "from_segment_id", "to_segment_id", "from_segment_name", "to_segment_name",
        "n_customers", "realised_revenue", "is_unchanged", "from_as_of", "to_as_of"
    },
    "predictions.customer_scores": {
        "customer_id", "as_of", "model_id", "purchase_probability", "propensity_decile",
        "segment_id", "segment_name", "reason_1", "reason_2", "reason_3", "expected_orders",
        "probability_alive", "predicted_revenue", "predicted_revenue_decile", "predicted_clv"
    },
    "predictions.feature_drift": {
        "feature", "psi", "is_drifted", "model_id", "as_of"
    },
    "predictions.model_runs": {
        "model_id", "trained_at", "algorithm", "as_of", "horizon_days", "feature_stats_id",
        "training_data_sha256", "artifact_sha256", "n_training_rows", "n_validation_rows",
        "roc_auc", "pr_auc", "brier", "lift_top_decile", "best_baseline", "best_baseline_roc_auc",
        "n_segments", "model_dir", "backtest_roc_auc", "backtest_bg_nbd_roc_auc",
        "backtest_revenue_capture", "backtest_bg_nbd_revenue_capture", "value_models_note"
    },
    "predictions.segment_profiles": {
        "segment_id", "segment_name", "description", "n_customers", "share", "revenue_share",
        "mean_purchase_probability", "never_ordered_share", "mean_days_since_last_order",
        "mean_n_orders", "mean_n_orders_365d", "mean_revenue", "mean_avg_order_value",
        "mean_tenure_days", "mean_discount_share", "mean_n_sessions_90d",
        "mean_n_product_views_90d", "mean_days_since_last_visit", "model_id", "as_of"
    },
}
NEVER_PUBLISHED = {
    "email", "first_name", "last_name", "name", "phone", "address", "city", "postcode", "zip",
    "birth_date", "income", "raw_record",
}
# fmt: on


def _published_columns(path: Path) -> dict[str, set[str]]:
    with duckdb.connect(str(path), read_only=True) as con:
        rows = con.execute(
            "select table_schema || '.' || table_name, column_name from information_schema.columns"
            " where table_schema not in ('information_schema', 'pg_catalog')"
        ).fetchall()
    found: dict[str, set[str]] = {}
    for table, column in rows:
        found.setdefault(table, set()).add(column)
    return found


def test_every_published_column_is_on_the_allow_list(good_run: Workspace) -> None:
    published = _published_columns(good_run.published)
    assert "core.customers" in published
    unexpected = {
        table: sorted(columns - PUBLISHED_COLUMNS.get(table, set()))
        for table, columns in published.items()
        if columns - PUBLISHED_COLUMNS.get(table, set())
    }
    assert unexpected == {}
    assert not {c for columns in published.values() for c in columns} & NEVER_PUBLISHED
    live = good_run.published.with_name("segmart_bi_live.duckdb")
    assert _published_columns(live) == published


def test_the_email_hash_is_keyed_with_the_workspace_secret(good_run: Workspace) -> None:
    key = (good_run.root / HASH_KEY_FILE).read_text().strip()
    with duckdb.connect(str(good_run.warehouse), read_only=True) as con:
        emails = dict(
            con.execute(
                "select customer_id, email from staging.stg_shop__customers"
                " where email is not null"
            ).fetchall()
        )
    with duckdb.connect(str(good_run.published), read_only=True) as con:
        hashes = dict(con.execute("select customer_id, email_hash from core.customers").fetchall())
    assert emails and set(emails) <= set(hashes)
    for customer, email in emails.items():
        keyed = hashlib.sha256(f"{key}\x1f{email}".encode()).hexdigest()
        assert hashes[customer] == keyed
        assert hashes[customer] not in (
            hashlib.md5(email.encode()).hexdigest(),
            hashlib.sha256(email.encode()).hexdigest(),
        )
    # the key is in no file dbt wrote (manifest, compiled SQL, run results, logs)
    for path in (good_run.root / "dbt-target").rglob("*"):
        if path.is_file():
            assert key not in path.read_text(errors="replace"), path


def _holding(path: Path, customer: str, skip: tuple[str, ...] = ()) -> dict[str, int]:
    """Every table.column (views too) of a DuckDB file whose text holds the id as a word."""
    with duckdb.connect(str(path), read_only=True) as con:
        tables = [t for t in base_tables(con, views=True) if t.split(".")[0] not in skip]
        return _matches(con, rf"(^|[^A-Za-z0-9]){re.escape(customer)}($|[^A-Za-z0-9])", tables)


def _quarantine_values_of(warehouse: Path, customer: str) -> str:
    """Quarantine a value of the customer's own row and of a line of one of their orders (the
    rows name their first key, not the customer); return that order's id."""
    with duckdb.connect(str(warehouse)) as con:
        (order_id,) = con.execute(
            "select min(order_id) from staging.stg_shop__orders where customer_id = ?", [customer]
        ).fetchone()
        con.execute(
            "insert into core.quarantined_values (quarantined_value_id, source_table, row_key,"
            " column_name, rule, raw_value) values ('forget-1', 'customers', $customer, 'city',"
            " 'undecodable_value', 'M\ufffdnchen'), ('forget-2', 'order_items', $order,"
            " 'unit_price', 'unparsable_value', 'n/a')",
            {"customer": customer, "order": order_id},
        )
    assert order_id
    return order_id


def test_forget_removes_a_customer_everywhere_and_a_rebuild_does_not_bring_them_back(
    last_good: Workspace,
) -> None:
    # someone scored, in an exported audience, with orders, events and a quarantined row or not
    with duckdb.connect(str(last_good.published), read_only=True) as con:
        (customer,) = con.execute(
            "select min(customer_id) from marketing.campaign_audiences"
        ).fetchall()[0]
    assert customer
    their_order = _quarantine_values_of(last_good.warehouse, customer)
    assert _holding(last_good.warehouse, customer)
    assert _holding(last_good.published, customer)
    assert any(customer in text for text in _export_texts(last_good.exports_dir).values())

    result = last_good.cli("forget", customer)
    assert_clean_success(result)

    # the suppression list (schema privacy) is the one place the id stays
    assert _holding(last_good.warehouse, customer, skip=("privacy",)) == {}
    with duckdb.connect(str(last_good.warehouse), read_only=True) as con:
        assert con.execute(
            "select count(*) from core.quarantined_values where row_key = ?", [their_order]
        ).fetchone() == (0,)
    assert _holding(last_good.published, customer) == {}
    assert not [p for p, t in _export_texts(last_good.exports_dir).items() if customer in t]

    assert_clean_success(last_good.cli("build"))
    assert _holding(last_good.warehouse, customer, skip=("privacy",)) == {}


def test_an_export_is_rewritten_whatever_duckdbs_module_connection_holds(tmp_path: Path) -> None:
    """`segmart forget` runs inside other code (a notebook, a test session): a result left
    unfinished on DuckDB's module-wide connection must not stop it rewriting an export."""
    from ml.delivery.privacy import _rewrite_without

    export = tmp_path / "audience.parquet"
    pq.write_table(pa.table({"customer_id": ["C1", "C2"], "channel": ["email", "sms"]}), export)
    unfinished = duckdb.execute("select 1 union all select 2")
    unfinished.fetchone()  # one row of two
    try:
        assert _rewrite_without(export, "C1")
    finally:
        unfinished.fetchall()  # leave the module's connection as other tests expect it
    assert pq.read_table(export).column("customer_id").to_pylist() == ["C2"]
