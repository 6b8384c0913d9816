"""The raw data contract, read from its one home: the var `raw_contract` in dbt_project.yml."""

from __future__ import annotations

from dataclasses import dataclass

from ml.config import dbt_var_defaults


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
    return {
        name: ContractTable(
            name=name,
            required=bool(spec["required"]),
            key_columns=tuple(spec["key_columns"]),
            columns=tuple(spec["columns"]),
            timestamps=tuple(spec["timestamps"]),
            numbers=tuple(spec["numbers"]),
        )
        for name, spec in dbt_var_defaults()["raw_contract"].items()
    }


CONTRACT = _load()
TIMESTAMP_COLUMNS = frozenset(c for table in CONTRACT.values() for c in table.timestamps)
NUMBER_COLUMNS = frozenset(c for table in CONTRACT.values() for c in table.numbers)
