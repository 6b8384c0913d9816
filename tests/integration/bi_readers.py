"""BI readers of the published files: a DuckDB 1.x client in its own venv, digests, a poller.

Most BI drivers of today bundle DuckDB 1.x (the JDBC driver in Metabase's and DBeaver's DuckDB
connectors, the `duckdb-cli` package), so the published files must open there too. The 1.x
client lives in a small venv made once per test session from PyPI and shared by the xdist
workers; without a package index the tests that need it skip and say why.
"""

from __future__ import annotations

import json
import subprocess
import textwrap
import venv
from pathlib import Path

import pytest

from tests.conftest import _shared_once

DUCKDB_1X = "duckdb<2"
PIP_TIMEOUT = 600

# Every table and view of a DuckDB file as {name: [row count, md5 of the sorted rows]}. Rows are
# cast to text, so both clients digest the values they read, in the same way.
DIGEST = textwrap.dedent(
    """
    import json
    import sys

    import duckdb

    con = duckdb.connect(sys.argv[1], read_only=True)
    names = [
        name
        for (name,) in con.execute(
            "select table_schema || '.' || table_name from information_schema.tables"
            " where table_catalog = current_database() order by 1"
        ).fetchall()
    ]
    digests = {"duckdb": duckdb.__version__}
    for name in names:
        schema, table = name.split(".")
        columns = [
            column
            for (column,) in con.execute(
                "select column_name from information_schema.columns where table_catalog ="
                " current_database() and table_schema = ? and table_name = ?"
                " order by ordinal_position",
                [schema, table],
            ).fetchall()
        ]
        row = ", ".join(f'cast("{column}" as varchar)' for column in columns)
        digests[name] = list(
            con.execute(
                "select count(*), md5(coalesce(string_agg(line, chr(10) order by line), ''))"
                f" from (select cast(row({row}) as varchar) as line from {name})"
            ).fetchone()
        )
    print(json.dumps(digests))
    """
)

# Holds ONE read-only connection open and queries `sql` until `stop` exists, one JSON line per
# query: the row, or the error. Run by either client, like a pooled BI connection.
POLLER = textwrap.dedent(
    """
    import json
    import sys
    import time
    from pathlib import Path

    import duckdb

    path, sql, out, stop = sys.argv[1], sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4])
    con = duckdb.connect(path, read_only=True)
    with out.open("w") as lines:
        while True:
            last = stop.exists()
            try:
                lines.write(json.dumps({"row": list(con.execute(sql).fetchone())}) + "\\n")
            except Exception as error:
                lines.write(json.dumps({"error": str(error)}) + "\\n")
            lines.flush()
            if last:
                break
            time.sleep(0.01)
    """
)


def _make_duckdb1_venv(target: Path) -> None:
    venv.create(target / "venv", with_pip=True)
    subprocess.run(
        [str(target / "venv/bin/python"), "-m", "pip", "install", "--quiet", DUCKDB_1X],
        check=True,
        capture_output=True,
        text=True,
        timeout=PIP_TIMEOUT,
    )


def duckdb1_python(shared_root: Path) -> Path:
    """The python of a venv holding DuckDB 1.x, made once per session; skip if pip cannot."""
    try:
        target = _shared_once(shared_root, "duckdb1_venv", _make_duckdb1_venv)
    except subprocess.CalledProcessError as error:
        lines = (error.stderr or error.stdout or "").strip().splitlines()
        pytest.skip(f"cannot pip install {DUCKDB_1X} (no package index?): {lines[-1:]}")
    except subprocess.TimeoutExpired:
        pytest.skip(f"pip install {DUCKDB_1X} took over {PIP_TIMEOUT} s (no package index?)")
    return target / "venv/bin/python"


def digests_with(python: Path | str, path: Path) -> dict[str, object]:
    """Digest every table and view of a DuckDB file with the client of `python`."""
    result = subprocess.run(
        [str(python), "-c", DIGEST, str(path)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def start_poller(
    python: Path | str, path: Path, sql: str, out: Path, stop: Path
) -> subprocess.Popen[str]:
    """Start a reader that holds one connection to `path` and queries `sql` until `stop`."""
    return subprocess.Popen(
        [str(python), "-c", POLLER, str(path), sql, str(out), str(stop)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def polled(out: Path) -> list[dict[str, list | str]]:
    """The lines a poller wrote."""
    return [json.loads(line) for line in out.read_text().splitlines() if line.strip()]
