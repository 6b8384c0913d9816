"""What a BI reader sees in the published file, and whether it is one whole publication."""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

SNAPSHOT = """
select
    (select count(distinct model_id) from predictions.customer_scores),
    (select min(model_id) from predictions.customer_scores),
    (select count(*) from predictions.customer_scores),
    (select count(distinct model_id) from predictions.segment_profiles),
    (select min(model_id) from predictions.segment_profiles),
    (select sum(n_customers) from predictions.segment_profiles),
    (select count(*) from core.customers),
    (select count(distinct model_id) from marketing.segment_summary),
    (select min(model_id) from marketing.segment_summary)
"""


@dataclass(frozen=True)
class Snapshot:
    """One query's view of the published tables."""

    n_score_models: int
    score_model: str
    n_scores: int
    n_profile_models: int
    profile_model: str
    n_profiled: int
    n_customers: int
    n_summary_models: int
    summary_model: str

    @property
    def is_one_publication(self) -> bool:
        """Scores, profiles and marketing marts of one model, counts that agree."""
        return (
            self.n_score_models == self.n_profile_models == self.n_summary_models == 1
            and self.score_model == self.profile_model == self.summary_model
            and self.n_scores == self.n_profiled > 0
            and self.n_customers >= self.n_scores
        )


def snapshot(con: duckdb.DuckDBPyConnection) -> Snapshot:
    """Read the snapshot in one query, so it sees one state of the file."""
    return Snapshot(*con.execute(SNAPSHOT).fetchall()[0])
