"""The equivalence check: the warehouse's features against both references, within tolerance."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb

from benchmarks.measure import BenchmarkError
from benchmarks.settings import ATOL, METADATA_COLUMNS, RTOL


@dataclass(frozen=True)
class Comparison:
    """One reference against one warehouse relation."""

    reference: str
    relation: str
    n_rows: int
    only_in_warehouse: int
    only_in_reference: int
    mismatched: dict[str, int]
    missing_columns: list[str]
    examples: list[str]

    @property
    def ok(self) -> bool:
        return not (
            self.only_in_warehouse
            or self.only_in_reference
            or self.mismatched
            or self.missing_columns
            or self.n_rows == 0
        )

    def describe(self) -> str:
        if self.ok:
            return f"{self.reference} = {self.relation}: {self.n_rows:,} rows equal"
        parts = [f"{self.reference} != {self.relation} ({self.n_rows:,} rows in the warehouse)"]
        if self.missing_columns:
            parts.append(f"  reference lacks columns: {', '.join(self.missing_columns)}")
        if self.only_in_warehouse or self.only_in_reference:
            parts.append(
                f"  rows only in the warehouse: {self.only_in_warehouse:,}, "
                f"only in the reference: {self.only_in_reference:,}"
            )
        for column, count in sorted(self.mismatched.items(), key=lambda kv: -kv[1]):
            parts.append(f"  {column}: {count:,} rows differ")
        parts.extend(f"  e.g. {example}" for example in self.examples)
        return "\n".join(parts)


# (relation, key column holding the snapshot date, reference filter, column -> reference column)
_CHECKED_RELATIONS = (
    ("intermediate.int_customer_snapshots_featurized", "snapshot_on", "true", "raw"),
    ("ml.customer_features", "as_of", "not is_training", "same"),
    ("ml.training_examples", "snapshot_on", "is_training", "same"),
)
_NUMERIC_TYPES = ("DOUBLE", "FLOAT", "INTEGER", "BIGINT", "HUGEINT", "SMALLINT", "DECIMAL")


def _reference_column(column: str, naming: str) -> str:
    if naming == "raw" and column not in ("is_training",):
        return f"{column}__raw"
    return column


def compare(
    con: duckdb.DuckDBPyConnection,
    reference_name: str,
    reference_relation: str,
    warehouse_relation: str,
    snapshot_key: str,
    reference_filter: str,
    naming: str,
) -> Comparison:
    """Join a warehouse relation to a reference on (customer, snapshot) and count differences.

    Numbers (and booleans) are equal when both are null or |a - b| <= ATOL + RTOL * |a|; other
    types must be identical.
    """
    described = con.sql(f"describe select * from wh.{warehouse_relation}").fetchall()
    reference_columns = {
        row[0] for row in con.sql(f"describe select * from {reference_relation}").fetchall()
    }
    columns = [
        (name, kind)
        for name, kind, *_ in described
        if name not in ("customer_id", snapshot_key) and name not in METADATA_COLUMNS
    ]
    missing = [
        name for name, _ in columns if _reference_column(name, naming) not in reference_columns
    ]
    columns = [(name, kind) for name, kind in columns if name not in missing]

    def equal(name: str, kind: str) -> str:
        left = f'w."{name}"'
        right = f'r."{_reference_column(name, naming)}"'
        if kind == "BOOLEAN" or kind.startswith(_NUMERIC_TYPES):
            left, right = f"cast({left} as double)", f"cast({right} as double)"
            return (
                f"(({left} is null and {right} is null) or "
                f"coalesce(abs({left} - {right}) <= {ATOL} + {RTOL} * abs({left}), false))"
            )
        return f"({left} is not distinct from {right})"

    counts = ",\n".join(
        f"count(*) filter (where w._present and r._present and not {equal(name, kind)})"
        for name, kind in columns
    )
    joined = f"""
        (select *, true as _present from wh.{warehouse_relation}) as w
        full outer join (
            select * replace (cast(snapshot_on as date) as snapshot_on), true as _present
            from {reference_relation}
            where {reference_filter}
        ) as r
            on w.customer_id = r.customer_id and w.{snapshot_key} = r.snapshot_on
    """
    row = con.sql(
        f"""
        select
            count(*) filter (where w._present),
            count(*) filter (where r._present is null),
            count(*) filter (where w._present is null),
            {counts}
        from {joined}
        """
    ).fetchall()[0]
    n_rows, only_in_warehouse, only_in_reference, *per_column = row
    mismatched = {
        name: count for (name, _), count in zip(columns, per_column, strict=True) if count
    }
    examples = []
    for name in sorted(mismatched, key=lambda n: -mismatched[n])[:3]:
        kind = dict(columns)[name]
        sample = con.sql(
            f"""
            select w.customer_id, w.{snapshot_key}, w."{name}",
                r."{_reference_column(name, naming)}"
            from {joined}
            where w._present and r._present and not {equal(name, kind)}
            limit 2
            """
        ).fetchall()
        examples.extend(
            f"{name} of {customer} at {snapshot}: warehouse {ours!r}, reference {theirs!r}"
            for customer, snapshot, ours, theirs in sample
        )
    return Comparison(
        reference=reference_name,
        relation=warehouse_relation,
        n_rows=n_rows,
        only_in_warehouse=only_in_warehouse,
        only_in_reference=only_in_reference,
        mismatched=mismatched,
        missing_columns=missing,
        examples=examples,
    )


def check_equivalence(
    warehouse: Path, pandas_output: Path | None, single_query_output: Path | None
) -> list[Comparison]:
    """Compare the warehouse's features with each reference's; raise if any differ.

    Raises
    ------
    BenchmarkError
        Listing every relation and column that differs, with examples.
    """
    comparisons = []
    with duckdb.connect() as con:
        con.execute(f"attach '{warehouse}' as wh (read_only)")
        references = []
        if single_query_output is not None:
            con.execute(f"attach '{single_query_output}' as single_query (read_only)")
            references.append(("single query", "single_query.snapshot_features"))
        if pandas_output is not None:
            references.append(("pandas", f"read_parquet('{pandas_output}')"))
        for name, relation in references:
            for warehouse_relation, snapshot_key, reference_filter, naming in _CHECKED_RELATIONS:
                comparisons.append(
                    compare(
                        con,
                        name,
                        relation,
                        warehouse_relation,
                        snapshot_key,
                        reference_filter,
                        naming,
                    )
                )
    failed = [c for c in comparisons if not c.ok]
    if failed:
        raise BenchmarkError(
            "the references do not compute what the warehouse computes; no time is compared:\n"
            + "\n".join(c.describe() for c in failed)
        )
    return comparisons
