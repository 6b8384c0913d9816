"""Settings: the one place that reads the environment and resolves paths."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_project"
PROFILES_DIR = PROJECT_ROOT


def _env_path(name: str, default: Path) -> Path:
    value = os.environ.get(name)
    return Path(value).expanduser().resolve() if value else default


@dataclass(frozen=True)
class Settings:
    """Where segmart reads and writes, and the point in time it works at.

    Every command-line option that touches data maps onto one field here; the environment
    variables give the defaults so that `dbt build` by hand and the CLI agree.
    """

    raw_dir: Path = field(
        default_factory=lambda: _env_path("SEGMART_RAW_DIR", PROJECT_ROOT / "data/demo/raw")
    )
    warehouse: Path = field(
        default_factory=lambda: _env_path(
            "SEGMART_WAREHOUSE", PROJECT_ROOT / "warehouse/segmart.duckdb"
        )
    )
    models_dir: Path = field(
        default_factory=lambda: _env_path("SEGMART_MODELS_DIR", PROJECT_ROOT / "models")
    )
    published_dir: Path = field(
        default_factory=lambda: _env_path("SEGMART_PUBLISHED_DIR", PROJECT_ROOT / "warehouse")
    )
    reports_dir: Path = field(
        default_factory=lambda: _env_path("SEGMART_REPORTS_DIR", PROJECT_ROOT / "reports")
    )
    exports_dir: Path = field(
        default_factory=lambda: _env_path("SEGMART_EXPORTS_DIR", PROJECT_ROOT / "exports")
    )
    # A mapping of the shop's own export: a YAML file or a shipped name (ml/ingest/mappings).
    mapping: str | None = field(default_factory=lambda: os.environ.get("SEGMART_MAPPING") or None)
    as_of: date | None = None
    horizon_days: int = 90
    target: str = field(default_factory=lambda: os.environ.get("SEGMART_TARGET", "dev"))
    # The oldest DuckDB storage format that holds the BI tables' types, so 1.x clients open it.
    bi_storage_version: str = field(
        default_factory=lambda: os.environ.get("SEGMART_BI_STORAGE_VERSION", "v1.0.0")
    )

    def with_overrides(self, **overrides: object) -> Settings:
        """A copy with the given fields replaced, ignoring those passed as None."""
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})

    @property
    def published_warehouse(self) -> Path:
        """The read-only copy BI tools open; swapped in whole after each good run."""
        return self.published_dir / "segmart_bi.duckdb"

    @property
    def landing_dir(self) -> Path:
        """Where raw files DuckDB cannot read as they lie are copied as UTF-8 for landing."""
        return self.warehouse.parent / "landing" / self.warehouse.stem

    def dbt_env(self) -> dict[str, str]:
        """Environment variables that profiles.yml and dbt_project.yml read."""
        return {
            "SEGMART_RAW_DIR": str(self.raw_dir),
            "SEGMART_WAREHOUSE": str(self.warehouse),
            "SEGMART_TARGET": self.target,
        }
