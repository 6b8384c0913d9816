"""A plain `dbt build` scores with the champion: the same tables `segmart score` writes.

Each test takes a private copy of the shared scored warehouse (one model, trained and scored
by the ML step, marketing marts built by the CLI's `marketing` selector) and runs dbt with no
selector, as an analytics engineer would.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd
import pytest

from ml import promotion, registry
from ml.config import Settings
from ml.errors import SegmartError
from ml.run.build import dbt_vars, run_dbt
from tests.marketing.scored import (  # noqa: F401 - marketing_dir is a fixture
    marketing_dir,
    private_settings,
)

pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("dbt_scores")]

COMPARED = (
    "predictions.customer_scores",
    "predictions.segment_profiles",
    "predictions.feature_drift",
    "marketing.segment_summary",
    "marketing.audience_candidates",
    "marketing.customer_recommendations",
)


def _read(settings: Settings, tables: tuple[str, ...] = COMPARED) -> dict[str, pd.DataFrame]:
    with duckdb.connect(str(settings.warehouse), read_only=True) as con:
        return {name: con.sql(f"select * from {name} order by all").df() for name in tables}


def _count(settings: Settings, sql: str) -> int:
    with duckdb.connect(str(settings.warehouse), read_only=True) as con:
        return con.execute(sql).fetchall()[0][0]


def _promoted(marketing_dir: Path, generated_data: Path, root: Path) -> Settings:  # noqa: F811
    settings = private_settings(marketing_dir, generated_data, root)
    (only,) = registry.list_models(settings.models_dir)
    promotion.promote(settings, only.model_id, "test: the model segmart score used")
    return settings


def test_plain_dbt_build_scores_as_segmart_score_did(
    marketing_dir: Path,  # noqa: F811 - the fixture imported above
    generated_data: Path,
    tmp_path: Path,
) -> None:
    settings = _promoted(marketing_dir, generated_data, tmp_path)
    history_sql = "select count(*) from predictions.customer_score_history"
    written_by_cli, history_rows = _read(settings), _count(settings, history_sql)
    assert len(written_by_cli["predictions.customer_scores"]) > 0

    # Unit tests left out only to save time: they check SQL logic on fixtures, not this data.
    run_dbt(settings, "build", dbt_vars(settings), unit_tests=False)

    built_by_dbt = _read(settings)
    for name in COMPARED:
        pd.testing.assert_frame_equal(built_by_dbt[name], written_by_cli[name], obj=name)
    # The same (as_of, model) slice of the history, replaced rather than appended.
    assert _count(settings, history_sql) == history_rows
    champion = _count(settings, "select count(*) from predictions.champion_model")
    assert champion == 1


def test_without_a_champion_the_build_passes_with_empty_predictions(
    marketing_dir: Path,  # noqa: F811
    generated_data: Path,
    tmp_path: Path,
) -> None:
    settings = private_settings(marketing_dir, generated_data, tmp_path)
    assert registry.read_champion(settings.models_dir) is None

    summary = run_dbt(settings, "build", dbt_vars(settings), unit_tests=False)

    assert summary.n_failed == 0
    for table in ("predictions.customer_scores", "marketing.segment_summary"):
        assert _count(settings, f"select count(*) from {table}") == 0, table
    assert _count(settings, "select count(*) from marketing.rfm_scores") > 0


def test_a_tampered_champion_fails_the_build_and_keeps_the_scores(
    marketing_dir: Path,  # noqa: F811
    generated_data: Path,
    tmp_path: Path,
) -> None:
    settings = _promoted(marketing_dir, generated_data, tmp_path)
    before = _read(settings, ("predictions.customer_scores",))
    champion = registry.load_metadata(settings.models_dir, registry.CHAMPION)
    artifact = registry.verified_artifact(settings.models_dir, champion)
    artifact.write_bytes(artifact.read_bytes() + b"tampered")

    with pytest.raises(SegmartError, match=r"customer_scores: model artifact .* was modified"):
        run_dbt(
            settings,
            "build",
            dbt_vars(settings),
            select="champion_model champion_features customer_scores",
        )

    after = _read(settings, ("predictions.customer_scores",))
    pd.testing.assert_frame_equal(
        after["predictions.customer_scores"], before["predictions.customer_scores"]
    )


def test_a_champion_whose_statistics_are_gone_fails_in_one_line(
    marketing_dir: Path,  # noqa: F811
    generated_data: Path,
    tmp_path: Path,
) -> None:
    settings = _promoted(marketing_dir, generated_data, tmp_path)
    before = _read(settings, ("predictions.customer_scores",))
    with duckdb.connect(str(settings.warehouse)) as con:
        con.execute("delete from ml.feature_stats")

    gone = r"customer_scores: the feature statistics of model .* no longer exist"
    with pytest.raises(SegmartError, match=gone):
        run_dbt(
            settings,
            "build",
            dbt_vars(settings),
            select="champion_model champion_features customer_scores",
        )

    after = _read(settings, ("predictions.customer_scores",))
    pd.testing.assert_frame_equal(
        after["predictions.customer_scores"], before["predictions.customer_scores"]
    )


SQL_SCORER = {"scorer": "sql"}
SCORING_NODES = "champion_model champion_features customer_scores customer_scores_sql"


def test_the_sql_scorer_equals_the_python_scorer(
    marketing_dir: Path,  # noqa: F811
    generated_data: Path,
    tmp_path: Path,
) -> None:
    settings = _promoted(marketing_dir, generated_data, tmp_path)

    run_dbt(settings, "build", dbt_vars(settings, extra=SQL_SCORER), select=SCORING_NODES)

    tables = ("predictions.customer_scores", "predictions.customer_scores_sql")
    in_python, in_sql = _read(settings, tables).values()
    assert len(in_python) > 0
    joined = in_python.merge(in_sql, on="customer_id", suffixes=("", "_sql"), validate="1:1")
    assert len(joined) == len(in_python) == len(in_sql)
    difference = (joined["purchase_probability"] - joined["purchase_probability_sql"]).abs()
    assert difference.max() <= 1e-6
    for column in ("propensity_decile", "segment_id", "segment_name", "model_id", "as_of"):
        assert joined[column].tolist() == joined[f"{column}_sql"].tolist(), column


def test_the_champions_scoring_sql_is_kept_beside_it_and_in_the_warehouse(
    marketing_dir: Path,  # noqa: F811
    generated_data: Path,
    tmp_path: Path,
) -> None:
    settings = _promoted(marketing_dir, generated_data, tmp_path)
    champion = registry.load_metadata(settings.models_dir, registry.CHAMPION)

    with duckdb.connect(str(settings.warehouse), read_only=True) as con:
        rows = con.sql("select model_id, scoring_sql from predictions.champion_scoring_sql")
        [(model_id, sql)] = rows.fetchall()
    assert model_id == champion.model_id
    assert (settings.models_dir / champion.model_id / "scoring.sql").read_text() == sql


def test_without_a_champion_the_sql_scorer_builds_empty(
    marketing_dir: Path,  # noqa: F811
    generated_data: Path,
    tmp_path: Path,
) -> None:
    settings = private_settings(marketing_dir, generated_data, tmp_path)
    assert registry.read_champion(settings.models_dir) is None

    summary = run_dbt(
        settings,
        "build",
        dbt_vars(settings, extra=SQL_SCORER),
        select="champion_model champion_features customer_scores_sql",
    )

    assert summary.n_failed == 0
    assert _count(settings, "select count(*) from predictions.customer_scores_sql") == 0


def test_scoring_sql_of_another_model_fails_the_sql_scorer_with_the_fix(
    marketing_dir: Path,  # noqa: F811
    generated_data: Path,
    tmp_path: Path,
) -> None:
    settings = _promoted(marketing_dir, generated_data, tmp_path)
    with duckdb.connect(str(settings.warehouse)) as con:
        con.execute("update predictions.champion_scoring_sql set model_id = 'another-model'")

    with pytest.raises(SegmartError, match=r"has no scoring SQL .*segmart models promote"):
        run_dbt(
            settings,
            "build",
            dbt_vars(settings, extra=SQL_SCORER),
            select="champion_model champion_features customer_scores_sql",
        )
