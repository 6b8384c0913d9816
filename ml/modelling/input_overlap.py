"""Which model inputs the scoring snapshot shares with the training snapshots.

An input whose scoring values mostly lie where training never saw any (a tenure that only
grows, a channel that was new at the cutoff) is left out before fitting, with the reason in the
train report: the model would otherwise score values it never learned from.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import pandas as pd

from ml import warehouse
from ml.modelling.evaluate import markdown_table
from ml.modelling.examples import Examples, customer_sample
from ml.modelling.features import model_matrix
from ml.serving.drift import (
    MAX_SHARE_OUTSIDE_TRAINING_RANGE,
    PSI_DRIFT_THRESHOLD,
    non_overlapping_inputs,
)

SCORING_TABLE = "ml.customer_features"
MAX_ROWS = 50_000
"""Scoring rows compared at most (a customer-hash sample above it)."""


@dataclass(frozen=True)
class InputOverlap:
    """Which model inputs the scoring snapshot shares with the training snapshots.

    `table` holds, per model input, its PSI between the training snapshots' rows and the
    scoring snapshot's, the share of scoring rows outside the training range and `is_dropped`
    (see `drift.non_overlapping_inputs`); empty when there was no scoring snapshot to compare.
    """

    table: pd.DataFrame
    as_of: str | None = None

    @property
    def dropped(self) -> dict[str, str]:
        """Left-out input -> why, in words."""
        if self.table.empty:
            return {}
        return {
            row.feature: (
                f"PSI {row.psi:.2f} (> {PSI_DRIFT_THRESHOLD}) between the training snapshots and"
                f" the {self.as_of} scoring snapshot, and {row.share_outside_training_range:.0%}"
                f" of scoring rows (> {MAX_SHARE_OUTSIDE_TRAINING_RANGE:.0%}) outside the"
                " training range: the model would score values it never saw"
            )
            for row in self.table[self.table["is_dropped"]].itertuples()
        }

    def to_markdown(self) -> str:
        """The report section: what was left out and why, or that nothing was."""
        if self.table.empty:
            return (
                f"No scoring snapshot ({SCORING_TABLE}) to compare with: every input was kept"
                " unchecked."
            )
        dropped = self.dropped
        worst = self.table.sort_values(["psi", "feature"], ascending=[False, True]).head(5)
        lines = [
            f"Compared before fitting: each input's PSI between the training snapshots and the"
            f" {self.as_of} scoring snapshot, and the share of scoring rows outside its training"
            f" range. An input is left out when PSI > {PSI_DRIFT_THRESHOLD} and more than"
            f" {MAX_SHARE_OUTSIDE_TRAINING_RANGE:.0%} of scoring rows lie outside that range.",
        ]
        if dropped:
            lines += [f"- left out `{feature}`: {why}" for feature, why in dropped.items()]
        else:
            lines.append("Nothing was left out. Largest PSI:")
        lines.append(
            markdown_table(
                worst[["feature", "psi", "share_outside_training_range", "is_dropped"]],
                digits=3,
                index=False,
            )
        )
        return "\n\n".join(lines)


def check_overlap(
    examples: Examples, scoring: pd.DataFrame | None, as_of: str | None
) -> InputOverlap:
    """Compare every model input of the training snapshots with the scoring snapshot.

    Parameters
    ----------
    examples : Examples
        The training examples (every snapshot).
    scoring : pandas.DataFrame or None
        The same inputs at the scoring snapshot (`ml.customer_features`, possibly a sample);
        None or empty when there is none.
    as_of : str or None
        The scoring snapshot's date, for the report.
    """
    if scoring is None or scoring.empty or len(examples.label) == 0:
        return InputOverlap(pd.DataFrame(), as_of)
    return InputOverlap(non_overlapping_inputs(examples.X, scoring[list(examples.inputs)]), as_of)


def read_scoring_inputs(
    con: duckdb.DuckDBPyConnection, inputs: tuple[str, ...], max_rows: int = MAX_ROWS
) -> tuple[pd.DataFrame | None, str | None]:
    """The model inputs of the scoring snapshot (a customer-hash sample above `max_rows`)."""
    if not warehouse.table_exists(con, SCORING_TABLE):
        return None, None
    schema = warehouse.table_schema(con, SCORING_TABLE)
    if not set(inputs) <= set(schema):
        return None, None  # a mart of another build: scoring will refuse it anyway
    count = warehouse.query(con, f"select count(*) as n, max(as_of) as as_of from {SCORING_TABLE}")
    n_rows, as_of = count.column("n")[0].as_py(), count.column("as_of")[0].as_py()
    where, params = customer_sample(n_rows, max_rows)
    select = ", ".join(f'"{column}"' for column in inputs)
    table = warehouse.query(con, f"select {select} from {SCORING_TABLE} {where}", params)
    return model_matrix(table, inputs), None if as_of is None else str(as_of)
