"""Column mappings: a shop's own export described in YAML, compiled to the landing dbt reads.

A mapping names the shop's files (path, encoding, delimiter, decimal separator, timestamp
format) and, for each contract table it fills, where every contract column comes from::

    files:
      export:
        path: orders_export.csv
        encoding: latin-1
        delimiter: ";"
        decimal: ","
        timestamp_format: "%d/%m/%Y %H:%M"
    tables:
      orders:
        file: export
        one_row_per: Name          # several rows per order: one order, its non-null values
        columns:
          order_id: Name                                    # a source column
          customer_id: {hash: Email}                        # hashed on landing, never stored
          channel: {constant: web}                          # the same value on every row
          status:                                           # the first rule that gives a value
            - {column: Cancelled at, when_present: cancelled}
            - {column: Refunded Amount, when_positive: returned}
            - {column: Financial Status, values: {voided: cancelled}}
            - {constant: completed}

`compile_landing` checks the mapping against the files' headers (one-line errors naming the
mapping key, the file and the columns it has) and returns the dbt var `landing`: per contract
table, the file to read and one SQL expression per contract column over the raw text.
"""

from __future__ import annotations

import codecs
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ml.errors import SegmartError
from ml.ingest.contract import CONTRACT, NUMBER_COLUMNS, TIMESTAMP_COLUMNS
from ml.ingest.files import RawFile, read_header

SHIPPED_DIR = Path(__file__).parent / "mappings"
_FILE_KEYS = {"path", "encoding", "delimiter", "decimal", "timestamp_format"}
_TABLE_KEYS = {"file", "columns", "one_row_per", "latest_by", "identical_rows"}
_RULE_KEYS = {"column", "constant", "hash", "values", "when_present", "when_positive"}


class MappingError(SegmartError):
    """A mapping that does not fit its files; the message names the key and the fix."""


@dataclass(frozen=True)
class MappedTable:
    """One contract table as the mapping fills it."""

    name: str
    file: RawFile
    columns: Mapping[str, Any]
    one_row_per: str | None = None
    latest_by: str | None = None
    identical_rows: str = "separate"


def resolve(mapping: str | Path) -> Path:
    """A mapping file: a path, or the name of one shipped with segmart (`shopify_orders`)."""
    path = Path(mapping).expanduser()
    if path.is_file():
        return path.resolve()
    shipped = SHIPPED_DIR / f"{mapping}.yml"
    if shipped.is_file():
        return shipped
    names = ", ".join(sorted(p.stem for p in SHIPPED_DIR.glob("*.yml")))
    raise MappingError(
        f"mapping {mapping} not found: pass a YAML file or a shipped mapping ({names})"
    )


def load(path: Path, raw_dir: Path) -> list[MappedTable]:
    """Read and check a mapping file against the files it names in `raw_dir`."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        first = str(error).splitlines()[0]
        raise MappingError(f"mapping {path} is not valid YAML: {first}") from error
    if not isinstance(document, dict) or not {"files", "tables"} <= document.keys():
        raise MappingError(f"mapping {path} needs two sections, `files:` and `tables:`")
    files = {
        name: _raw_file(path, name, spec, raw_dir) for name, spec in _items(document, "files")
    }
    return [_table(path, name, spec, files) for name, spec in _items(document, "tables")]


def _items(document: dict, section: str) -> list[tuple[str, dict]]:
    entries = document[section]
    if not isinstance(entries, dict) or not entries:
        raise MappingError(f"mapping section `{section}:` must map names to settings")
    return list(entries.items())


def _raw_file(source: Path, name: str, spec: Any, raw_dir: Path) -> RawFile:
    where = f"mapping {source.name}: files.{name}"
    if not isinstance(spec, dict) or "path" not in spec:
        raise MappingError(f"{where} needs a `path:` (relative to --raw-dir)")
    _only(where, spec, _FILE_KEYS)
    path = (raw_dir / str(spec["path"])).expanduser()
    if not path.is_file():
        raise MappingError(f"{where}.path: file {path} not found")
    decimal = str(spec.get("decimal", "."))
    if decimal not in (".", ","):
        raise MappingError(f"{where}.decimal must be '.' or ',', got {decimal!r}")
    raw_file = RawFile(
        path=path.resolve(),
        encoding=str(spec.get("encoding", "utf-8")),
        delimiter=str(spec.get("delimiter", ",")),
        decimal=decimal,
        timestamp_format=spec.get("timestamp_format"),
    )
    try:
        codecs.lookup(raw_file.encoding)
    except LookupError as error:
        raise MappingError(
            f"{where}.encoding: unknown encoding {raw_file.encoding!r} (use utf-8, latin-1 or "
            "windows-1252, for example)"
        ) from error
    return raw_file


def _table(source: Path, name: str, spec: Any, files: dict[str, RawFile]) -> MappedTable:
    where = f"mapping {source.name}: tables.{name}"
    if name not in CONTRACT:
        raise MappingError(f"{where}: not a contract table (one of: {', '.join(CONTRACT)})")
    if not isinstance(spec, dict) or "file" not in spec or "columns" not in spec:
        raise MappingError(f"{where} needs `file:` and `columns:`")
    _only(where, spec, _TABLE_KEYS)
    if spec["file"] not in files:
        raise MappingError(f"{where}.file: no file {spec['file']!r} under `files:`")
    raw_file = files[spec["file"]]
    header = read_header(raw_file)
    columns = spec["columns"]
    if not isinstance(columns, dict):
        raise MappingError(f"{where}.columns must map contract columns to sources")
    for column, rule in columns.items():
        if column not in CONTRACT[name].columns:
            raise MappingError(
                f"{where}.columns.{column}: not a column of {name} "
                f"(one of: {', '.join(CONTRACT[name].columns)})"
            )
        _check_rule(f"{where}.columns.{column}", rule, header, raw_file)
    for key in ("one_row_per", "latest_by"):
        if spec.get(key) is not None:
            _check_source(f"{where}.{key}", spec[key], header, raw_file)
    missing_keys = [key for key in CONTRACT[name].key_columns if key not in columns]
    if missing_keys:
        raise MappingError(
            f"{where}.columns lacks the key column(s) {', '.join(missing_keys)}: map them"
        )
    identical_rows = spec.get("identical_rows", "separate")
    if identical_rows not in ("separate", "copies"):
        raise MappingError(f"{where}.identical_rows must be separate or copies")
    return MappedTable(
        name=name,
        file=raw_file,
        columns=columns,
        one_row_per=spec.get("one_row_per"),
        latest_by=spec.get("latest_by"),
        identical_rows=identical_rows,
    )


def _only(where: str, spec: dict, allowed: set[str]) -> None:
    unknown = sorted(set(spec) - allowed)
    if unknown:
        raise MappingError(
            f"{where}: unknown key(s) {', '.join(unknown)} (allowed: {', '.join(sorted(allowed))})"
        )


def _check_source(where: str, column: Any, header: list[str], raw_file: RawFile) -> None:
    if column not in header:
        raise MappingError(
            f"{where}: column {column!r} is not in {raw_file.path} "
            f"(it has: {', '.join(header) or 'no header'})"
        )


def _check_rule(where: str, rule: Any, header: list[str], raw_file: RawFile) -> None:
    if isinstance(rule, str):
        _check_source(where, rule, header, raw_file)
    elif isinstance(rule, list) and rule:
        for position, part in enumerate(rule):
            _check_rule(f"{where}[{position}]", part, header, raw_file)
    elif (
        isinstance(rule, dict)
        and rule.keys() <= _RULE_KEYS
        and len(rule.keys() & {"column", "constant", "hash"}) == 1
    ):
        source = rule.get("column", rule.get("hash"))
        if source is not None:
            _check_source(where, source, header, raw_file)
        if "values" in rule and not isinstance(rule["values"], dict):
            raise MappingError(f"{where}.values must map spellings to contract values")
    else:
        raise MappingError(
            f"{where}: expected a column name, a list of rules, or one of "
            "{column: X}, {constant: V}, {hash: X} (with optional values, when_present, "
            "when_positive)"
        )


def compile_landing(tables: list[MappedTable], spool_dir: Path) -> dict[str, dict]:
    """The dbt var `landing` for mapped tables: file, reader options and SQL per column."""
    return {table.name: _compile_table(table, spool_dir) for table in tables}


def _compile_table(table: MappedTable, spool_dir: Path) -> dict:
    raw_file = table.file
    select = {
        column: _expression(rule, column, raw_file) for column, rule in table.columns.items()
    }
    return {
        **raw_file.reader(spool_dir),
        "select": select,
        "one_row_per": _text(table.one_row_per) if table.one_row_per else None,
        # Ordered as ISO text of the timestamp, not the raw text ("1/12/2024" > "1/2/2025"):
        # the landing orders by a list of it and the value, both text.
        "latest_by": "strftime(try_cast("
        f"{_timestamp(table.latest_by, raw_file)} as timestamp), '%Y-%m-%d %H:%M:%S')"
        if table.latest_by
        else None,
        "identical_rows": table.identical_rows,
    }


def quote_identifier(name: str) -> str:
    """A source column as a SQL identifier of the landing's `source` relation."""
    return 'source."' + name.replace('"', '""') + '"'


def quote_literal(value: object) -> str:
    """A SQL string literal."""
    return "'" + str(value).replace("'", "''") + "'"


def _text(column: str) -> str:
    return f"nullif(trim(cast({quote_identifier(column)} as varchar)), '')"


def _timestamp(column: str, raw_file: RawFile) -> str:
    text = _text(column)
    fmt = raw_file.timestamp_format
    if not fmt:
        return text
    parsed = f"try_strptime({text}, {quote_literal(fmt)})"
    if "%z" in fmt or "%Z" in fmt:
        parsed = f"timezone('UTC', {parsed})"
    # A value the format does not fit stays as it was, so staging quarantines it with its text.
    return f"coalesce(strftime({parsed}, '%Y-%m-%d %H:%M:%S'), {text})"


def _number(column: str, raw_file: RawFile) -> str:
    text = _text(column)
    if raw_file.decimal == ",":
        # 1.234,56 -> 1234.56: thousands dots go, the decimal comma becomes a point.
        return f"replace(replace({text}, '.', ''), ',', '.')"
    return text


def _source_value(column: str, contract_column: str, raw_file: RawFile) -> str:
    if contract_column in TIMESTAMP_COLUMNS:
        return _timestamp(column, raw_file)
    if contract_column in NUMBER_COLUMNS:
        return _number(column, raw_file)
    return _text(column)


def _expression(rule: Any, contract_column: str, raw_file: RawFile) -> str:
    if isinstance(rule, str):
        return _source_value(rule, contract_column, raw_file)
    if isinstance(rule, list):
        parts = ", ".join(_expression(part, contract_column, raw_file) for part in rule)
        return f"coalesce({parts})"
    if "constant" in rule:
        return quote_literal(rule["constant"])
    if "hash" in rule:
        # The id is a hash of the normalised address: the address itself never lands.
        return f"left(sha256(lower({_text(rule['hash'])})), 20)"
    value = _source_value(rule["column"], contract_column, raw_file)
    if "when_present" in rule:
        return (
            f"case when {_text(rule['column'])} is not null then "
            f"{quote_literal(rule['when_present'])} end"
        )
    if "when_positive" in rule:
        number = f"try_cast({_number(rule['column'], raw_file)} as double)"
        return f"case when {number} > 0 then {quote_literal(rule['when_positive'])} end"
    if "values" in rule:
        cases = " ".join(
            f"when {quote_literal(str(spelling).strip().lower())} then {quote_literal(target)}"
            for spelling, target in rule["values"].items()
        )
        return f"case lower({value}) {cases} else {value} end"
    return value
