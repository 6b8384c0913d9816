"""Raw files as DuckDB can read them: declared encodings, one line ending, no undecodable byte.

DuckDB reads UTF-8 CSV fast and deterministically, but a line with a byte that is not UTF-8 is
rejected whole (an accent in a city cost a customer and, as orphans, their whole history), it
knows no Windows-1252, and a file whose line endings change midway (rows appended on another
system) stops the read. So every CSV is scanned once in large blocks; a clean UTF-8 file is
read where it lies, anything else is copied once into a UTF-8, `\\n`-only spool file, where a
byte that cannot be decoded becomes U+FFFD: staging then nulls that value with a note and keeps
the row.
"""

from __future__ import annotations

import codecs
import csv
import functools
import hashlib
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq

BLOCK_BYTES = 16 << 20
REPLACEMENT = "\ufffd"


@dataclass(frozen=True)
class RawFile:
    """A shop file and how to read it."""

    path: Path
    encoding: str = "utf-8"
    delimiter: str = ","
    decimal: str = "."
    timestamp_format: str | None = None

    @property
    def is_parquet(self) -> bool:
        return self.path.suffix.lower() == ".parquet"

    @property
    def codec(self) -> str:
        """Python's canonical name of the encoding (utf-8, iso8859-1, cp1252, ...)."""
        return codecs.lookup(self.encoding).name

    def reader(self, spool_dir: Path) -> dict:
        """How the landing macro reads this file: path, format, delimiter and header."""
        if self.is_parquet:
            return {"path": str(self.path), "format": "parquet", "columns": read_header(self)}
        return {
            "path": str(readable_copy(self, spool_dir)),
            "source_path": str(self.path),
            "format": "csv",
            "delimiter": self.delimiter,
            "columns": read_header(self),
        }


def read_header(raw_file: RawFile) -> list[str]:
    """The column names of a file, as written (Parquet schema, or the CSV's first line)."""
    if raw_file.is_parquet:
        return list(pq.read_schema(raw_file.path).names)
    with open(raw_file.path, encoding=raw_file.codec, errors="replace", newline="") as handle:
        first = handle.readline()
    names = next(csv.reader([first.lstrip("\ufeff")], delimiter=raw_file.delimiter), [])
    return [name.strip() for name in names]


@dataclass(frozen=True)
class Scan:
    """What one pass over a CSV file found."""

    is_utf8: bool
    n_crlf: int
    n_lf: int

    @property
    def has_mixed_line_endings(self) -> bool:
        return self.n_crlf > 0 and self.n_lf > 0


def scan(path: Path) -> Scan:
    """Check in one pass whether a file is valid UTF-8 and which line endings it uses."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    is_utf8, n_crlf, n_newline, last = True, 0, 0, b""
    with open(path, "rb") as handle:
        while block := handle.read(BLOCK_BYTES):
            if is_utf8:
                try:
                    decoder.decode(block)
                except UnicodeDecodeError:
                    is_utf8 = False
            n_newline += block.count(b"\n")
            n_crlf += block.count(b"\r\n") + (last == b"\r" and block[:1] == b"\n")
            last = block[-1:]
    if is_utf8:
        try:
            decoder.decode(b"", final=True)  # a character cut off at the end of the file
        except UnicodeDecodeError:
            is_utf8 = False
    return Scan(is_utf8=is_utf8, n_crlf=n_crlf, n_lf=n_newline - n_crlf)


def needs_copy(raw_file: RawFile) -> bool:
    """Whether DuckDB can read the file where it lies (UTF-8, one kind of line ending)."""
    if raw_file.codec not in ("utf-8", "utf-8-sig"):
        return True
    found = scan(raw_file.path)
    return not found.is_utf8 or found.has_mixed_line_endings


def readable_copy(raw_file: RawFile, spool_dir: Path) -> Path:
    """The file itself if DuckDB reads it as is, else a UTF-8 `\\n` copy in `spool_dir`.

    Scanned and copied once per process for a given file state: `segmart run` lands the raw
    files for each dbt invocation, and one export may fill several tables.
    """
    stat = raw_file.path.stat()
    return _readable_copy(raw_file, spool_dir, stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=64)
def _readable_copy(raw_file: RawFile, spool_dir: Path, size: int, mtime_ns: int) -> Path:
    if not needs_copy(raw_file):
        return raw_file.path
    spool_dir.mkdir(parents=True, exist_ok=True)
    # Named by the whole path: two exports called orders.csv in different folders never meet.
    digest = hashlib.md5(str(raw_file.path).encode()).hexdigest()[:8]
    target = spool_dir / f"{raw_file.path.stem}.{digest}.utf8.csv"
    partial = target.with_suffix(".partial")
    # newline=None reads \r\n, \r and \n alike as \n; "replace" turns a byte the encoding lacks
    # into U+FFFD, which staging treats as an undecodable value.
    with (
        open(raw_file.path, encoding=raw_file.codec, errors="replace", newline=None) as source,
        open(partial, "w", encoding="utf-8", newline="\n") as copy,
    ):
        while block := source.read(BLOCK_BYTES):
            copy.write(block)
    partial.replace(target)
    return target
