"""`segmart run`: build, train, score, marketing marts, publish, report, in that order.

Each step raises on failure, so a failed run never reaches publishing and BI keeps the last
good tables. What the data lacks (an optional table, marketing consent) is not a failure: the
run succeeds, says so in one line per gap (through `log` and in the summary), and the report
and the export say it again where the missing results would be.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ml.config import Settings


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

    def summary(self) -> str:
        """A short, printable account of the run."""
        where = [f"warehouse:  {self.warehouse}"]
        if self.published:
            where.append(f"BI tables:  {self.published} (open read-only)")
        if self.exports:
            empty = " (empty files: no customer has marketing consent)"
            where.append(f"audiences:  {self.exports}{empty if self.exports_empty else ''}")
        if self.report:
            where.append(f"report:     {self.report}")
        warnings = ["", *self.warnings] if self.warnings else []
        return "\n".join([*self.lines, *warnings, "", *where])


def run_pipeline(
    settings: Settings,
    algorithm: str,
    random_state: int,
    build: Callable[..., None],
    log: Callable[[str], None] = print,
) -> PipelineResult:
    """Run every step; `build(settings, selector=...)` runs dbt with progress.

    Parameters
    ----------
    settings : Settings
        Where the data, warehouse and outputs are.
    algorithm, random_state
        Passed to training.
    build : callable
        Runs a dbt selector (`warehouse`, then `marketing`).
    log : callable
        Receives progress messages and, once each, the run's warning and note lines (one line
        each: a gap in the data, a drifted feature, a model that does not beat a baseline).

    Returns
    -------
    PipelineResult
        Paths of the results, the train and score reports, and the warning lines.
    """
    from ml.activation import export_audiences
    from ml.coverage import data_gaps
    from ml.publish import publish
    from ml.report import write_report
    from ml.scoring import score
    from ml.training import TrainOptions, train

    result = PipelineResult(warehouse=settings.warehouse)
    build(settings, selector="warehouse")
    trained = train(settings, TrainOptions(algorithm=algorithm, random_state=random_state), log)
    result.lines.append(trained.to_markdown())
    scored = score(settings, "latest", log)
    result.lines.append(scored.to_markdown())
    # Train and score log their warnings as they happen; the summary repeats every one at the end.
    result.warnings += [f"warning: {line}" for line in (*trained.warnings, *scored.warnings)]
    build(settings, selector="marketing")
    gaps = data_gaps(settings)
    for gap in gaps:
        log(gap.line)
        result.warnings.append(gap.line)
    result.exports = export_audiences(settings)
    result.exports_empty = any(gap.key == "consent" for gap in gaps)
    result.published = publish(settings)
    result.report = write_report(settings)
    return result
