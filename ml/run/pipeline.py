"""`segmart run`: build, train, score, marketing marts, export, publish, report, in that order.

Each step raises on failure, so a failed run never reaches publishing and BI keeps the last
good tables. The last three steps are also functions of their own (`export_step`,
`publish_step`, `report_step`) so that `segmart export`, `segmart publish` and `segmart report`
re-run one of them on the current warehouse; each checks its inputs first and names the command
that makes them. What the data lacks (an optional table, marketing consent) is not a failure: the
run succeeds, says so in one line per gap (through `log` and in the summary), and the report
and the export say it again where the missing results would be.

The model step (`ml.run.lifecycle.model_step`) scores with the champion, or trains and decides
whether the new model replaces it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ml.config import Settings
from ml.errors import SegmartError
from ml.run.lifecycle import model_step

if TYPE_CHECKING:
    from ml.modelling.train_report import TrainReport
    from ml.serving.scoring import ScoreReport

SCORES_TABLE = "predictions.customer_scores"
MARKETING_TABLE = "marketing.audience_summary"


@dataclass
class PipelineResult:
    """Where the results of a run are, and what the run did without."""

    warehouse: Path
    published: Path | None = None
    report: Path | None = None
    exports: Path | None = None
    lines: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    exports_empty: bool = False
    trained: TrainReport | None = None
    scored: ScoreReport | None = None

    def where(self) -> list[str]:
        """One line per result: the warehouse, BI tables, audience files, report."""
        where = [f"warehouse:  {self.warehouse}"]
        if self.published:
            where.append(f"BI tables:  {self.published} (open read-only)")
        if self.exports:
            empty = " (empty files: no customer has marketing consent)"
            where.append(f"audiences:  {self.exports}{empty if self.exports_empty else ''}")
        if self.report:
            where.append(f"report:     {self.report}")
        return where

    def summary(self) -> str:
        """A short, printable account of the run."""
        where = self.where()
        warnings = ["", *self.warnings] if self.warnings else []
        return "\n".join([*self.lines, *warnings, "", *where])


def run_pipeline(
    settings: Settings,
    algorithm: str,
    random_state: int,
    build: Callable[..., None],
    log: Callable[[str], None] = print,
    retrain: bool = False,
    promote: bool = False,
    full_refresh: bool = False,
) -> PipelineResult:
    """Run every step; `build(settings, selector=...)` runs dbt with progress.

    Parameters
    ----------
    settings : Settings
        Where the data, warehouse and outputs are.
    algorithm, random_state
        Passed to training.
    build : callable
        Runs a dbt selector (`warehouse` or, for the champion, `scoring`; then `marketing`);
        `stats_as_of=` reuses the preprocessing statistics fitted at that as_of.
    log : callable
        Receives progress messages and, once each, the run's warning and note lines (one line
        each: a gap in the data, a drifted feature, a model that does not beat a baseline).
    retrain, promote
        Train even if the champion is fit to score; make the new model the champion without
        the backtest (see `model_step`).
    full_refresh
        Rebuild the incremental tables from every raw file in the run's first warehouse build.

    Returns
    -------
    PipelineResult
        Paths of the results, the train and score reports, and the warning lines.
    """
    _import_steps()
    from ml.delivery.activation import export_audiences
    from ml.delivery.publish import publish
    from ml.modelling.training import TrainOptions
    from ml.report import write_report
    from ml.run.coverage import data_gaps

    result = PipelineResult(warehouse=settings.warehouse)
    options = TrainOptions(algorithm=algorithm, random_state=random_state)
    if full_refresh:
        build = refresh_first_build(build)
    trained, scored = model_step(settings, options, build, log, retrain, promote)
    result.trained, result.scored = trained, scored
    if trained is not None:
        result.lines.append(trained.to_markdown())
    result.lines.append(scored.to_markdown())
    # Train and score log their warnings as they happen; the summary repeats every one at the end.
    warned = (*(trained.warnings if trained else ()), *scored.warnings)
    result.warnings += [f"warning: {line}" for line in warned]
    build(settings, selector="marketing")
    gaps = data_gaps(settings)
    for gap in gaps:
        log(gap.line)
        result.warnings.append(gap.line)
    # Once for the three steps: the run just wrote what they need.
    check_step_inputs(settings)
    result.exports = export_audiences(settings)
    result.exports_empty = any(gap.key == "consent" for gap in gaps)
    result.published = publish(settings)
    result.report = write_report(settings)
    return result


def refresh_first_build(build: Callable[..., None]) -> Callable[..., None]:
    """`build`, with the first warehouse build a full refresh.

    A run may build the warehouse twice (with the champion's statistics, then for a retrain):
    once from every raw file is enough, the second build then finds nothing new to read.
    """
    refreshed = False

    def build_refreshing_once(settings: Settings, **options: object) -> None:
        nonlocal refreshed
        if options.get("selector") in ("warehouse", "scoring") and not refreshed:
            options["full_refresh"] = refreshed = True
        build(settings, **options)

    return build_refreshing_once


def _import_steps() -> None:
    """Import every step's module up front: a broken import fails the run before it builds."""
    for module in (
        "ml.delivery.activation",
        "ml.run.coverage",
        "ml.delivery.publish",
        "ml.report",
    ):
        importlib.import_module(module)


def check_step_inputs(settings: Settings, marketing: bool = True) -> None:
    """Raise a one-line SegmartError naming the command to run when a step's inputs are missing.

    Parameters
    ----------
    settings : Settings
        The working warehouse to check (read-only).
    marketing : bool
        Also require the marketing marts, built on the current scores.
    """
    from ml.warehouse import connect, table_exists

    with connect(settings.warehouse, read_only=True) as con:
        if not table_exists(con, SCORES_TABLE):
            raise SegmartError(
                f"no scores in {settings.warehouse} ({SCORES_TABLE} is missing):"
                " run `segmart score` first"
            )
        if not marketing:
            return
        if not table_exists(con, MARKETING_TABLE):
            raise SegmartError(
                f"no marketing marts in {settings.warehouse} ({MARKETING_TABLE} is missing):"
                " run `segmart build --selector marketing` first"
            )
        runs_sql = "select distinct model_id, cast(as_of as date) from {}"
        scored = set(con.execute(runs_sql.format(SCORES_TABLE)).fetchall())
        marketed = set(con.execute(runs_sql.format(MARKETING_TABLE)).fetchall())
    if marketed and marketed != scored:
        raise SegmartError(
            f"the marketing marts are built on other scores (model {_ids(marketed)}) than"
            f" {SCORES_TABLE} (model {_ids(scored)}): run `segmart build --selector marketing`"
            " first"
        )


def _ids(runs: set[tuple[str, object]]) -> str:
    return ", ".join(sorted({str(model_id) for model_id, _ in runs}))


def export_step(settings: Settings) -> Path:
    """Write the audience files of the current warehouse; return their directory.

    Example: segmart export (after `segmart score` and `segmart build --selector marketing`)
    """
    from ml.delivery.activation import export_audiences

    check_step_inputs(settings)
    return export_audiences(settings)


def publish_step(settings: Settings) -> Path:
    """Publish the BI tables of the current warehouse; return the published DuckDB file.

    Example: segmart publish (after `segmart score` and `segmart build --selector marketing`)
    """
    from ml.delivery.publish import publish

    check_step_inputs(settings)
    return publish(settings)


def report_step(settings: Settings) -> Path:
    """Write the HTML report of the current warehouse; return its path.

    Example: segmart report (after `segmart score`; the marketing charts need the marketing marts)
    """
    from ml.report import write_report

    check_step_inputs(settings, marketing=False)
    return write_report(settings)
