"""Score history, segment transitions and stable segment ids, on the generated shop for real.

One module-scoped sequence on a private copy of the shared scored warehouse (model A trained
and scored as of AS_OF): re-score AS_OF with A, build one step later (AS_OF + 30 days, its own
feature statistics), promote a copy of A whose segment ids run backwards, retrain (model B keeps
that champion's ids where its clusters match, which its own value order would not), score
with B, build the marketing marts.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path

import duckdb
import pytest

from ml import promotion, registry
from ml.config import Settings
from ml.modelling.training import TrainOptions, train
from ml.run.build import dbt_vars, run_dbt
from ml.segments import MAX_MATCH_DISTANCE
from ml.serving.scoring import score
from scripts.generate import generate
from tests.conftest import AS_OF
from tests.integration.cli import segmart
from tests.marketing.scored import (  # noqa: F401 - marketing_dir is a fixture
    build_marketing,
    marketing_dir,
    private_settings,
)

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("score_history")]

LATER = AS_OF + timedelta(days=30)


@dataclass(frozen=True)
class History:
    settings: Settings
    first_model: str
    second_model: str
    reference_model: str  # the champion the retrain matched: first_model with ids reversed
    n_segments: int
    rows_after_first_scoring: int
    rows_after_rescoring: int


def _count(settings: Settings, sql: str, params: list | None = None) -> int:
    with duckdb.connect(str(settings.warehouse), read_only=True) as con:
        return con.execute(sql, params or []).fetchone()[0]


@pytest.fixture(scope="module")
def history(
    marketing_dir: Path,  # noqa: F811 - the fixture imported above
    generated_data: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> History:
    settings = private_settings(marketing_dir, generated_data, tmp_path_factory.mktemp("history"))
    first = registry.load_metadata(settings.models_dir).model_id
    rows = "select count(*) from predictions.customer_score_history"
    before = _count(settings, rows)
    score(settings, first)
    after = _count(settings, rows)
    reference = _promote_with_reversed_ids(settings, first)
    later = replace(settings, as_of=LATER)
    run_dbt(later, "build --selector warehouse", dbt_vars(later))
    options = TrainOptions(
        algorithm="logistic_regression", n_segments=5, random_state=0, n_threads=1
    )
    second = train(later, options).model_id
    score(later, second)
    build_marketing(later)
    n_segments = registry.load_metadata(settings.models_dir, first).segments["n_segments"]
    return History(
        settings=later,
        first_model=first,
        second_model=second,
        reference_model=reference,
        n_segments=n_segments,
        rows_after_first_scoring=before,
        rows_after_rescoring=after,
    )


def _promote_with_reversed_ids(settings: Settings, model_id: str) -> str:
    """Promote a copy of the model whose segment ids run backwards (k..1) and return its id.

    The retrained model's own value order would give the first model's ids again; against a
    reference with other ids only the matching can keep them, so the tests below would fail
    without it.
    """
    model = registry.load_model(settings.models_dir, model_id)
    k = int(model.segmenter.n_segments_)
    segmenter = copy.deepcopy(model.segmenter)
    segmenter.segment_of_cluster_ = k + 1 - segmenter.segment_of_cluster_
    names = {k + 1 - segment: name for segment, name in model.segment_names.items()}
    metadata = replace(model.metadata, model_id=f"{model_id[:-8]}reversed")
    copied = replace(model, metadata=metadata, segmenter=segmenter, segment_names=names)
    registry.save_model(settings.models_dir, copied, "segment ids reversed (test)")
    promotion.promote(settings, metadata.model_id, "segment ids reversed (test)")
    return metadata.model_id


def test_rescoring_the_same_as_of_with_the_same_model_replaces_its_slice(history: History):
    assert history.rows_after_rescoring == history.rows_after_first_scoring > 1000
    slice_rows, n_runs = (
        _count(
            history.settings,
            f"select {what} from predictions.customer_score_history"
            " where as_of = ? and model_id = ?",
            [AS_OF, history.first_model],
        )
        for what in ("count(*)", "count(distinct scored_at)")
    )
    assert slice_rows == history.rows_after_first_scoring and n_runs == 1


def test_each_run_appends_its_slice_with_every_column(history: History):
    with duckdb.connect(str(history.settings.warehouse), read_only=True) as con:
        runs = con.execute(
            "select as_of, model_id, count(*), count(segment_name), count(predicted_revenue)"
            " from predictions.customer_score_history group by all order by as_of"
        ).fetchall()
        (n_scores,) = con.execute("select count(*) from predictions.customer_scores").fetchone()
    assert [(r[0], r[1]) for r in runs] == [
        (AS_OF, history.first_model),
        (LATER, history.second_model),
    ]
    assert runs[1][2] == runs[1][3] == n_scores
    assert all(0 < r[4] <= r[2] for r in runs)  # predicted revenue is carried along


def test_transitions_account_for_every_customer_of_both_runs(history: History):
    with duckdb.connect(str(history.settings.warehouse), read_only=True) as con:
        totals = con.execute(
            "select count(*) filter (where a.customer_id is not null and b.customer_id"
            " is not null), count(*) filter (where b.customer_id is null),"
            " count(*) filter (where a.customer_id is null)"
            " from (select customer_id from predictions.customer_score_history where as_of = ?)"
            " as a full outer join (select customer_id from"
            " predictions.customer_score_history where as_of = ?) as b using (customer_id)",
            [AS_OF, LATER],
        ).fetchone()
        moves = con.execute(
            "select sum(n_customers) filter (where from_segment_id is not null"
            " and to_segment_id is not null), coalesce(sum(n_customers) filter (where"
            " to_segment_id is null), 0), coalesce(sum(n_customers) filter (where"
            " from_segment_id is null), 0), count(distinct (from_as_of, to_as_of))"
            " from marketing.segment_transitions"
        ).fetchone()
        membership = con.execute(
            "select as_of, sum(n_customers), sum(customer_share)"
            " from marketing.segment_membership_history group by as_of order by as_of"
        ).fetchall()
    both, left, entered = totals
    assert entered > 0  # customers who signed up between the two dates
    assert moves == (both, left, entered, 1)
    assert [row[0] for row in membership] == [AS_OF, LATER]
    assert all(row[2] == pytest.approx(1.0) for row in membership)
    assert membership[0][1] == both + left and membership[1][1] == both + entered


def test_a_retrain_one_step_later_keeps_the_segment_of_customers_whose_behaviour_did_not_change(
    history: History,
):
    # Unchanged: no order and no web event from 90 days before the first date to the second,
    # so every windowed feature is zero at both and only the clocks (recency, tenure) moved on
    # by 30 days. (Merely "nothing between the two dates" also counts customers who just went
    # quiet, whose 90-day windows emptied: they rightly move towards lapsed segments.)
    kept, n_unchanged = (
        duckdb.connect(str(history.settings.warehouse), read_only=True)
        .execute(
            """
        with unchanged as (
            select customer_id from predictions.customer_score_history where as_of = ?
            except select customer_id from core.orders
            where ordered_on >= ? - 90 and ordered_on < ?
            except select customer_id from staging.stg_shop__web_events
            where event_on >= ? - 90 and event_on < ?
        ),
        runs as (
            select customer_id, as_of, segment_id from predictions.customer_score_history
        )
        select
            -- the reference's id of the segment first scored: the reversed one
            count(*) filter (where ? + 1 - before.segment_id = after.segment_id),
            count(*)
        from unchanged
        inner join runs as before on unchanged.customer_id = before.customer_id
            and before.as_of = ?
        inner join runs as after on unchanged.customer_id = after.customer_id
            and after.as_of = ?
        """,
            [AS_OF, AS_OF, LATER, AS_OF, LATER, history.n_segments, AS_OF, LATER],
        )
        .fetchone()
    )
    assert n_unchanged > 500
    assert kept / n_unchanged >= 0.9, (kept, n_unchanged)


def test_the_retrained_model_records_which_ids_it_kept_from_which_model(history: History):
    model_dir = history.settings.models_dir / history.second_model
    stable = json.loads((model_dir / "metadata.json").read_text())["segments"]["stable_ids"]
    assert stable["reference_model_id"] == history.reference_model
    # Five segments a month apart on the same shop: each found again, well within the limit.
    assert set(stable["kept"]) == {"1", "2", "3", "4", "5"} and stable["vanished"] == []
    assert max(stable["kept"].values()) < MAX_MATCH_DISTANCE / 2
    report = (model_dir / "report.md").read_text()
    assert f"Segment ids follow model {history.reference_model}" in report


def test_without_a_score_history_the_marts_build_empty(
    marketing_dir: Path,  # noqa: F811 - the fixture imported above
    generated_data: Path,
    tmp_path: Path,
):
    # A warehouse scored before the history existed: the marketing build must still pass.
    settings = private_settings(marketing_dir, generated_data, tmp_path)
    with duckdb.connect(str(settings.warehouse)) as con:
        con.execute("drop table predictions.customer_score_history")
    build_marketing(settings)
    for mart in ("segment_membership_history", "segment_transitions"):
        assert _count(settings, f"select count(*) from marketing.{mart}") == 0


def test_a_minimal_shop_scored_a_month_apart_shows_its_transitions_and_keeps_segment_ids(
    tmp_path: Path,
):
    # The minimal shape (customers and orders only, no events, no consent), through the CLI:
    # the champion scores AS_OF and, a month later, LATER; then a retrain at LATER keeps ids.
    # One test, because every step needs the one before (121 s measured on the shared 2 cores).
    generate(1500, 5, tmp_path / "shop", "csv", shape="minimal")
    raw = str(tmp_path / "shop" / "raw")
    quick = ("--raw-dir", raw, "--algorithm", "logistic_regression")
    for as_of in (AS_OF, LATER):
        done = segmart(tmp_path, "run", *quick, "--as-of", str(as_of))
        assert done.returncode == 0, done.stderr
    with duckdb.connect(str(tmp_path / "segmart.duckdb"), read_only=True) as con:
        runs = con.execute(
            "select as_of, count(distinct model_id), count(*)"
            " from predictions.customer_score_history group by as_of order by as_of"
        ).fetchall()
        (both,) = con.execute(
            "select count(*) from (select customer_id from predictions.customer_score_history"
            " where as_of = ? intersect select customer_id"
            " from predictions.customer_score_history where as_of = ?)",
            [AS_OF, LATER],
        ).fetchone()
        stayed_or_moved, entered, left = con.execute(
            "select sum(n_customers) filter (where from_segment_id is not null"
            " and to_segment_id is not null), sum(n_customers) filter (where from_segment_id"
            " is null), coalesce(sum(n_customers) filter (where to_segment_id is null), 0)"
            " from marketing.segment_transitions"
        ).fetchone()
    assert [(r[0], r[1]) for r in runs] == [(AS_OF, 1), (LATER, 1)]
    assert stayed_or_moved == both > 500
    assert both + entered == runs[1][2] and both + left == runs[0][2]
    report = (tmp_path / "reports" / "segmart_report.html").read_text(encoding="utf-8")
    assert 'id="plot-segment-transitions"' in report
    first_model = registry.champion_id(tmp_path / "models")
    # Training on the LATER build (the champion's preprocessing) is enough to see the match.
    # The champion's run built only what scoring needs: the training marts come from a build.
    built = segmart(
        tmp_path, "build", "--raw-dir", raw, "--as-of", str(LATER), "--stats-as-of", str(AS_OF)
    )
    assert built.returncode == 0, built.stderr
    done = segmart(tmp_path, "train", "--algorithm", "logistic_regression", "--as-of", str(LATER))
    assert done.returncode == 0, done.stderr
    newest = registry.list_models(tmp_path / "models")[-1]
    assert newest.model_id != first_model
    stable = newest.segments["stable_ids"]
    assert stable["reference_model_id"] == first_model and len(stable["kept"]) >= 2
