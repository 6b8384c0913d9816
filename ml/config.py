"""Settings: the one place that reads the environment and resolves paths."""

from __future__ import annotations

import contextlib
import os
import secrets
from dataclasses import dataclass, field, replace
from datetime import date
from functools import cache
from pathlib import Path

import yaml

from ml.errors import SegmartError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DBT_PROJECT_DIR = PROJECT_ROOT / "dbt_project"
PROFILES_DIR = PROJECT_ROOT
# The name of a warehouse that owns the folder it lies in (the demo's); any other name gets a
# workspace folder of its own beside it, so two warehouses in one folder never share outputs.
WAREHOUSE_NAME = "segmart.duckdb"
# Derived from the workspace unless given or set in the environment (SEGMART_<NAME>_DIR).
WORKSPACE_DIRS = {
    "models_dir": "models",
    "published_dir": "",
    "reports_dir": "reports",
    "exports_dir": "exports",
}
HASH_KEY_FILE = ".segmart_hash_key"
# dbt builds two nodes at once (profiles.yml) for a shop whose raw files weigh less than this,
# one otherwise: two heavy models at once ran out of the 3GB memory limit at 1M customers
# (1.3 GB of Parquet); at 2,000 customers, where dbt's Python is most of a build, one node's
# Python overlaps the other's SQL.
SMALL_SHOP_BYTES = 256 * 1024**2
# dbt scrubs the values of DBT_ENV_SECRET_* variables from its logs and refuses them outside
# profiles.yml, which hands this one to DuckDB as a session variable (see profiles.yml).
DBT_HASH_KEY_VARIABLE = "DBT_ENV_SECRET_SEGMART_HASH_KEY"


@cache
def dbt_var_defaults() -> dict:
    """The defaults of the dbt vars, read from their one home: `vars:` in dbt_project.yml.

    Settings takes its point-in-time defaults from here, so a `dbt build` by hand and the CLI
    cannot disagree.
    """
    project = yaml.safe_load((DBT_PROJECT_DIR / "dbt_project.yml").read_text(encoding="utf-8"))
    return project["vars"]


def dbt_threads(raw_dir: Path) -> int:
    """dbt's threads for the shop in `raw_dir`; SEGMART_DBT_THREADS, when set, decides."""
    if given := os.environ.get("SEGMART_DBT_THREADS"):
        if not given.isdigit() or int(given) < 1:
            raise SegmartError(
                f"SEGMART_DBT_THREADS={given!r} is not a number of dbt threads: use 1, 2, ..."
                " or unset it (two for a shop under 256 MB of raw files, else one)"
            )
        return int(given)
    files = raw_dir.rglob("*") if raw_dir.is_dir() else ()
    size = sum(path.stat().st_size for path in files if path.is_file())
    return 2 if size < SMALL_SHOP_BYTES else 1


def _env_path(name: str, default: Path | None = None) -> Path | None:
    value = os.environ.get(name)
    return Path(value).expanduser().resolve() if value else default


DEMO_WAREHOUSE = PROJECT_ROOT / "warehouse" / WAREHOUSE_NAME


def _default_warehouse() -> Path:
    workdir = _env_path("SEGMART_WORKDIR")
    default = workdir / WAREHOUSE_NAME if workdir else DEMO_WAREHOUSE
    return _env_path("SEGMART_WAREHOUSE", default)


@dataclass(frozen=True)
class Settings:
    """Where segmart reads and writes, and the point in time it works at.

    Every command-line option that touches data maps onto one field here and defaults to it;
    the environment variables and the dbt vars of dbt_project.yml (`horizon_days`) give the
    defaults, so that `dbt build` by hand and the CLI agree. A warehouse is a
    workspace: what is derived from it (models, the published BI copy, reports, exports,
    landing, the hash key) lives in `workspace` unless a directory is given explicitly (an
    argument or `SEGMART_<NAME>_DIR`); `with_overrides(warehouse=...)` moves what was derived.
    """

    raw_dir: Path = field(
        default_factory=lambda: _env_path("SEGMART_RAW_DIR", PROJECT_ROOT / "data/demo/raw")
    )
    warehouse: Path = field(default_factory=_default_warehouse)
    # One folder for every output of every warehouse (SEGMART_WORKDIR); None: beside the warehouse.
    workdir: Path | None = field(default_factory=lambda: _env_path("SEGMART_WORKDIR"))
    # None: derived from the workspace (see WORKSPACE_DIRS).
    models_dir: Path = None  # type: ignore[assignment]
    published_dir: Path = None  # type: ignore[assignment]
    reports_dir: Path = None  # type: ignore[assignment]
    exports_dir: Path = None  # type: ignore[assignment]
    # A mapping of the shop's own export: a YAML file or a shipped name (ml/ingest/mappings).
    mapping: str | None = field(default_factory=lambda: os.environ.get("SEGMART_MAPPING") or None)
    as_of: date | None = None
    horizon_days: int = field(default_factory=lambda: int(dbt_var_defaults()["horizon_days"]))
    # `segmart run` retrains when the champion's as_of is more than this many days before as_of,
    # or when one of its inputs drifted above this PSI (twice the drift warning's 0.25).
    max_model_age_days: int = 90
    retrain_drift_psi: float = 0.5
    target: str = field(default_factory=lambda: os.environ.get("SEGMART_TARGET", "dev"))
    # The oldest DuckDB storage format that holds the BI tables' types, so 1.x clients open it.
    bi_storage_version: str = field(
        default_factory=lambda: os.environ.get("SEGMART_BI_STORAGE_VERSION", "v1.0.0")
    )
    # The directories derived from the workspace rather than given: re-derived on a new warehouse.
    derived: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        derived = set()
        for name, folder in WORKSPACE_DIRS.items():
            if getattr(self, name) is not None:
                continue
            explicit = _env_path(f"SEGMART_{name.upper()}")
            if explicit is None:
                derived.add(name)
            # The demo keeps the checkout's folders (models/, reports/, exports/) it always had.
            base = PROJECT_ROOT if self.is_demo and folder else self.workspace
            object.__setattr__(self, name, explicit or base / folder)
        object.__setattr__(self, "derived", frozenset(derived))

    @property
    def is_demo(self) -> bool:
        """The default warehouse of the checkout (warehouse/segmart.duckdb), no workdir."""
        return self.workdir is None and self.warehouse == DEMO_WAREHOUSE

    def with_overrides(self, **overrides: object) -> Settings:
        """A copy with the given fields replaced, ignoring those passed as None.

        Directories derived from the workspace are derived again, so a new warehouse (or
        workdir) takes its models, BI copy, reports and exports with it.
        """
        given = {k: v for k, v in overrides.items() if v is not None}
        rederive = {name: None for name in self.derived if name not in given}
        return replace(self, **rederive, **given)

    @property
    def workspace(self) -> Path:
        """The folder that holds everything derived from the warehouse.

        `workdir` when set; else the warehouse's folder for a warehouse named `segmart.duckdb`
        (the demo: `warehouse/`, though the demo's models, reports and exports stay in the
        checkout's own folders), and `<folder>/<name>/` for any other name.
        """
        if self.workdir is not None:
            return self.workdir
        if self.warehouse.name == WAREHOUSE_NAME:
            return self.warehouse.parent
        return self.warehouse.parent / self.warehouse.stem

    @property
    def published_warehouse(self) -> Path:
        """The read-only copy BI tools open; swapped in whole after each good run."""
        return self.published_dir / "segmart_bi.duckdb"

    @property
    def landing_dir(self) -> Path:
        """Where raw files DuckDB cannot read as they lie are copied as UTF-8 for landing."""
        return self.workspace / "landing" / self.warehouse.stem

    @property
    def hash_key_file(self) -> Path:
        """The local secret keying the published email hash when SEGMART_HASH_KEY is unset."""
        return self.workspace / HASH_KEY_FILE

    def hash_key(self) -> str:
        """The key of the published email hash: SEGMART_HASH_KEY, else the workspace's secret.

        The secret file is created on first use, readable by its owner only. Never log it.
        """
        key = os.environ.get("SEGMART_HASH_KEY")
        if key:
            return key
        path = self.hash_key_file
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            draft = path.with_name(f"{path.name}.{os.getpid()}.tmp")
            descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(descriptor, "w") as handle:
                handle.write(secrets.token_hex(32))
            # a link appears whole and fails if another run created the key first: use theirs
            with contextlib.suppress(FileExistsError):
                os.link(draft, path)
            draft.unlink()
        key = path.read_text().strip()
        if not key:
            raise SegmartError(
                f"the hash key file {path} is empty: delete it (a new key is made) or set"
                " SEGMART_HASH_KEY"
            )
        return key

    def dbt_env(self) -> dict[str, str]:
        """Environment variables that profiles.yml and dbt_project.yml read."""
        return {
            "SEGMART_RAW_DIR": str(self.raw_dir),
            "SEGMART_WAREHOUSE": str(self.warehouse),
            # The registry dbt's predictions models load the champion from.
            "SEGMART_MODELS_DIR": str(self.models_dir),
            "SEGMART_TARGET": self.target,
            "SEGMART_DBT_THREADS": str(dbt_threads(self.raw_dir)),
            DBT_HASH_KEY_VARIABLE: self.hash_key(),
        }
