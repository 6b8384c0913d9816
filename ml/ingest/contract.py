"""The raw data contract, read from its one home: the var `raw_contract` in dbt_project.yml."""

from __future__ import annotations

from dataclasses import dataclass

import yaml

from ml.config import DBT_PROJECT_DIR


@dataclass(frozen=True)
class ContractTable:
    """One raw table of the contract."""

    name: str
    required: bool
    key_columns: tuple[str, ...]
    columns: tuple[str, ...]
    timestamps: tuple[str, ...]
    numbers: tuple[str, ...]


def _load() -> dict[str, ContractTable]:
    project = yaml.safe_load((DBT_PROJECT_DIR / "dbt_project.yml").read_text(encoding="utf-8"))
    return {
        name: ContractTable(
            name=name,
            required=bool(spec["required"]),
            key_columns=tuple(spec["key_columns"]),
            columns=tuple(spec["columns"]),
            timestamps=tuple(spec["timestamps"]),
            numbers=tuple(spec["numbers"]),
        )
        for name, spec in project["vars"]["raw_contract"].items()
    }


CONTRACT = _load()
TIMESTAMP_COLUMNS = frozenset(c for table in CONTRACT.values() for c in table.timestamps)
NUMBER_COLUMNS = frozenset(c for table in CONTRACT.values() for c in table.numbers)
