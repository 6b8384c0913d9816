"""`segmart run`: build, train, score, marketing marts, publish, report, in that order.

Each step raises on failure, so a failed run never reaches publishing and BI keeps the last
good tables.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ml.config import Settings


@dataclass
class PipelineResult:
    """Where the results of a run are."""

    warehouse: Path
    published: Path | None = None
    report: Path | None = None
    exports: Path | None = None
    lines: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """A short, printable account of the run."""
        where = [f"warehouse:  {self.warehouse}"]
        if self.published:
            where.append(f"BI tables:  {self.published} (open read-only)")
        if self.exports:
            where.append(f"audiences:  {self.exports}")
        if self.report:
            where.append(f"report:     {self.report}")
        return "\n".join([*self.lines, "", *where])


def run_pipeline(
    settings: Settings,
    algorithm: str,
    random_state: int,
    build: Callable[..., None],
    log: Callable[[str], None] = print,
) -> PipelineResult:
    """Run every step; `build(settings, selector=...)` runs dbt with progress."""
    from ml.publish import publish
    from ml.scoring import score
    from ml.training import TrainOptions, train

    result = PipelineResult(warehouse=settings.warehouse)
    build(settings, selector="warehouse")
    trained = train(settings, TrainOptions(algorithm=algorithm, random_state=random_state), log)
    result.lines.append(trained.to_markdown())
    scored = score(settings, "latest", log)
    result.lines.append(scored.to_markdown())
    build(settings, selector="marketing")
    result.exports = _export_audiences(settings)
    result.published = publish(settings)
    result.report = _write_report(settings)
    return result


def _export_audiences(settings: Settings) -> Path | None:
    try:
        from ml.activation import export_audiences
    except ImportError:  # the marketing step is optional until its module exists
        return None
    return export_audiences(settings)


def _write_report(settings: Settings) -> Path | None:
    try:
        from ml.report import write_report
    except ImportError:
        return None
    return write_report(settings)
