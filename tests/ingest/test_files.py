"""Raw files DuckDB cannot read as they lie get one UTF-8, `\\n`-only copy; clean ones do not."""

from __future__ import annotations

from pathlib import Path

import duckdb

from ml.ingest.files import BLOCK_BYTES, RawFile, needs_copy, read_header, readable_copy, scan


def test_a_clean_utf8_file_is_read_where_it_lies(tmp_path: Path) -> None:
    path = tmp_path / "orders.csv"
    path.write_text("customer_id,city\nC1,Zürich\n", encoding="utf-8")
    assert not needs_copy(RawFile(path))
    assert readable_copy(RawFile(path), tmp_path / "spool") == path


def test_a_latin1_byte_becomes_a_replacement_character_and_the_line_stays(tmp_path: Path) -> None:
    path = tmp_path / "customers.csv"
    path.write_bytes("customer_id,city\nC1,Zürich Société\nC2,Paris\n".encode("latin-1"))
    copy = readable_copy(RawFile(path), tmp_path / "spool")
    lines = copy.read_text(encoding="utf-8").splitlines()
    assert lines == ["customer_id,city", "C1,Z\ufffdrich Soci\ufffdt\ufffd", "C2,Paris"]


def test_a_declared_encoding_is_decoded_exactly(tmp_path: Path) -> None:
    path = tmp_path / "customers.csv"
    path.write_bytes("customer_id;city\nC1;€uro “Zürich”\n".encode("cp1252"))
    copy = readable_copy(RawFile(path, encoding="windows-1252", delimiter=";"), tmp_path / "s")
    assert copy.read_text(encoding="utf-8").splitlines()[1] == "C1;€uro “Zürich”"


def test_rows_appended_with_other_line_endings_are_read_whole(tmp_path: Path) -> None:
    path = tmp_path / "orders.csv"
    path.write_bytes(b"a,b\n1,2\n3,4\r\n5,6\r\n")
    assert scan(path).has_mixed_line_endings
    copy = readable_copy(RawFile(path), tmp_path / "spool")
    with duckdb.connect() as con:
        rows = con.sql(f"select * from read_csv('{copy}', all_varchar=true)").fetchall()
    assert rows == [("1", "2"), ("3", "4"), ("5", "6")]


def test_a_crlf_split_across_two_blocks_counts_once(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    body = b"x" * (BLOCK_BYTES - 1) + b"\r\n" + b"y\r\n"
    path.write_bytes(body)
    found = scan(path)
    assert (found.n_crlf, found.n_lf) == (2, 0)
    assert not found.has_mixed_line_endings


def test_the_header_is_read_in_the_files_encoding_without_its_bom(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_bytes("\ufeffName;Prénom;Total\n1;Zoé;3,50\n".encode("utf-8"))
    assert read_header(RawFile(path, delimiter=";")) == ["Name", "Prénom", "Total"]


def test_a_file_is_scanned_and_copied_once_however_many_tables_read_it(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_bytes("id;city\n1;Zürich\n".encode("latin-1"))
    raw_file = RawFile(path, encoding="latin-1", delimiter=";")
    first = readable_copy(raw_file, tmp_path / "spool")
    written = first.stat().st_mtime_ns
    again = [readable_copy(raw_file, tmp_path / "spool") for _ in range(3)]
    assert again == [first] * 3 and first.stat().st_mtime_ns == written
    # A changed file is copied anew.
    path.write_bytes("id;city\n1;Zürich\n2;Köln\n".encode("latin-1"))
    assert readable_copy(raw_file, tmp_path / "spool").read_text().count("\n") == 3


def test_a_multibyte_character_cut_off_at_the_end_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "cut.csv"
    path.write_bytes("a\nZ\u00fc".encode()[:-1])
    assert not scan(path).is_utf8
