"""Export this run's audiences as files for activation tools (email, SMS, push, ads).

`exports/<as_of>/` holds, per playbook audience, `<audience>.csv` and `<audience>.parquet` with
the customers to contact (treatment only), `_holdout.csv`/`.parquet` with every audience's
control group (to measure against, never to contact) and `_manifest.json` (as_of, model, row
counts, columns). Controls live in their own file so that uploading an audience file as is can
never contact a held-out customer.

The directory is written whole under a temporary name and renamed into place: a tool reading
exports/<as_of>/ sees a complete export or none, never a half-written one.

When no customer has marketing consent (a shop without a consent column), the export is still
written, with every file empty and the reason in the manifest's `note`: a tool that syncs the
latest export then sees "contact nobody" and why, instead of finding no export for this as_of and
falling back to an older one whose customers may no longer consent.

Every row carries `audience_id` (the audience's name, stable across runs) and `campaign_key`
(`<audience>-<as_of>`: this export of it). A shop that sends the campaign and records the
campaign_key on its campaign_touches closes the loop: marketing.audience_lift compares the
export's treated members with its own control group. For that, and for the contact cap of the
next run, each export's members (treated and control) are also recorded in the warehouse table
`activation.exported_audience_members`, replaced per as_of in the same step as the files.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from contextlib import ExitStack
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from ml.config import Settings
from ml.errors import SegmartError
from ml.run.coverage import consent_gap, read_coverage
from ml.warehouse import connect, read_table, table_exists

AUDIENCES_TABLE = "marketing.campaign_audiences"
PLAYBOOK_TABLE = "marketing.audience_summary"

AUDIENCE_COLUMNS = (
    "customer_id",
    "audience_id",
    "campaign_key",
    "audience",
    "channel",
    "offer",
    "expected_value",
    "purchase_probability",
    "propensity_decile",
    "segment_name",
    "rfm_group",
    "lifecycle_stage",
    "recommended_category_1",
    "recommended_category_2",
    "recommended_category_3",
    "audience_rank",
    "model_id",
    "as_of",
)
"""Columns of an audience file, in order: what an activation tool needs, no PII."""

HOLDOUT_COLUMNS = (
    "customer_id",
    "audience_id",
    "campaign_key",
    "audience",
    "channel",
    "offer",
    "model_id",
    "as_of",
)
HOLDOUT_NAME = "_holdout"
MANIFEST_NAME = "_manifest.json"
MEMBERS_TABLE = "activation.exported_audience_members"
"""Every export's members, treated and control: what audience_lift and the contact cap read."""

# Audience names become file names; the playbook's own test allows the same pattern.
_AUDIENCE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


@dataclass(frozen=True)
class AudienceFiles:
    """The tables of one export: one per audience (treatment) and the holdout.

    `note` says why an export is empty (written to the manifest), None otherwise.
    """

    as_of: date
    model_id: str
    audiences: dict[str, pa.Table]
    holdout: pa.Table
    note: str | None = None


def split_audiences(
    selected: pa.Table, audience_names: list[str], run: tuple[date, str] | None = None
) -> AudienceFiles:
    """Split campaign_audiences rows into per-audience treatment tables and one holdout table.

    Parameters
    ----------
    selected : pyarrow.Table
        Rows of marketing.campaign_audiences (one run: a single as_of and model_id).
    audience_names : list of str
        Every playbook audience, so an audience that selected nobody still gets (empty) files.
    run : tuple of (date, str), optional
        The (as_of, model_id) of the run when `selected` has no rows to read it from.

    Returns
    -------
    AudienceFiles
        Treatment rows per audience ordered by audience_rank, and the control rows.
    """
    for name in audience_names:
        if not _AUDIENCE_NAME.match(name):
            raise SegmartError(
                f"audience name {name!r} cannot be a file name: use lower-case letters, digits"
                " and underscores in seeds/audience_playbook.csv"
            )
    runs = {
        (row["as_of"], row["model_id"])
        for row in selected.select(["as_of", "model_id"]).to_pylist()
    }
    if not runs and run is not None:
        runs = {run}
    if len(runs) != 1:
        raise SegmartError(
            f"{AUDIENCES_TABLE} holds {len(runs)} runs (as_of, model_id), expected exactly one:"
            " rebuild it with `segmart run`"
        )
    [(as_of, model_id)] = list(runs)
    selected = with_campaign_keys(selected, as_of)
    is_control = selected["is_control"]
    treatment = selected.filter(pc.invert(is_control)).select(list(AUDIENCE_COLUMNS))
    audiences = {}
    for name in audience_names:
        rows = treatment.filter(pc.equal(treatment["audience"], name))
        audiences[name] = rows.sort_by([("audience_rank", "ascending")])
    holdout = (
        selected.filter(is_control)
        .select(list(HOLDOUT_COLUMNS))
        .sort_by([("audience", "ascending"), ("customer_id", "ascending")])
    )
    return AudienceFiles(as_of=as_of, model_id=model_id, audiences=audiences, holdout=holdout)


def campaign_key(audience: str, as_of: date) -> str:
    """The key of one export of an audience, e.g. ``win_back_high_value-2025-10-01``."""
    return f"{audience}-{as_of.isoformat()}"


def with_campaign_keys(selected: pa.Table, as_of: date) -> pa.Table:
    """Add `audience_id` (the audience) and `campaign_key` (this export of it) to every row."""
    audiences = selected["audience"]
    keys = pc.binary_join_element_wise(audiences, pa.scalar(as_of.isoformat()), "-")
    return selected.append_column("audience_id", audiences).append_column(
        "campaign_key", keys.cast(pa.string())
    )


def members_table(files: AudienceFiles) -> pa.Table:
    """The export's members, one row per customer and audience, for the warehouse record."""
    treated = [
        table.select(["customer_id", "audience_id", "campaign_key", "channel"])
        for table in files.audiences.values()
    ]
    control = files.holdout.select(["customer_id", "audience_id", "campaign_key", "channel"])
    parts = [
        *(part.append_column("is_control", pa.array([False] * part.num_rows)) for part in treated),
        control.append_column("is_control", pa.array([True] * control.num_rows)),
    ]
    members = pa.concat_tables([part.cast(parts[-1].schema) for part in parts])
    n = members.num_rows
    return members.append_column(
        "exported_on", pa.array([files.as_of] * n, pa.date32())
    ).append_column("model_id", pa.array([files.model_id] * n, pa.string()))


def _write_pair(table: pa.Table, directory: Path, stem: str) -> list[str]:
    pa_csv.write_csv(table, directory / f"{stem}.csv")
    pq.write_table(table, directory / f"{stem}.parquet")
    return [f"{stem}.csv", f"{stem}.parquet"]


def _count(table: pa.Table, audience: str) -> int:
    return pc.sum(pc.equal(table["audience"], audience)).as_py() or 0


def manifest(files: AudienceFiles) -> dict:
    """What an export holds, for the activation tool and for audits."""
    why = {"note": files.note} if files.note else {}
    return {
        **why,
        "as_of": files.as_of.isoformat(),
        "model_id": files.model_id,
        "exported_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "audiences": {
            name: {
                "audience_id": name,
                "campaign_key": campaign_key(name, files.as_of),
                "n_customers": table.num_rows,
                "n_control": _count(files.holdout, name),
                "files": [f"{name}.csv", f"{name}.parquet"],
            }
            for name, table in files.audiences.items()
        },
        "holdout": {
            "n_customers": files.holdout.num_rows,
            "files": [f"{HOLDOUT_NAME}.csv", f"{HOLDOUT_NAME}.parquet"],
            "note": "control groups: never contact these customers; each row's campaign_key"
            " names the export it is the control group of",
        },
        "columns": list(AUDIENCE_COLUMNS),
    }


def write_export(files: AudienceFiles, exports_dir: Path, warehouse: Path | None = None) -> Path:
    """Write an export to exports_dir/<as_of>/, replacing an earlier export of that as_of whole.

    With `warehouse`, the members are recorded in MEMBERS_TABLE in a transaction committed only
    once the directory is in place: the record and the files change together or not at all.

    Returns
    -------
    pathlib.Path
        The export directory.
    """
    exports_dir.mkdir(parents=True, exist_ok=True)
    for leftover in exports_dir.glob(".*.tmp-*"):  # from a run killed mid-export
        shutil.rmtree(leftover, ignore_errors=True)
    target = exports_dir / files.as_of.isoformat()
    staging = exports_dir / f".{target.name}.tmp-{os.getpid()}"
    retired = exports_dir / f".{target.name}.old.tmp-{os.getpid()}"
    staging.mkdir()
    with ExitStack() as stack:
        con = None if warehouse is None else stack.enter_context(connect(warehouse))
        try:
            for name, table in files.audiences.items():
                _write_pair(table, staging, name)
            _write_pair(files.holdout, staging, HOLDOUT_NAME)
            (staging / MANIFEST_NAME).write_text(json.dumps(manifest(files), indent=2) + "\n")
            if con is not None:
                _record_members(con, files)
            # A directory cannot be renamed over a non-empty one: move the old export aside
            # first. Between the two renames the export is briefly absent, never partial.
            if target.exists():
                target.rename(retired)
            staging.rename(target)
            if con is not None:
                con.execute("commit")
        except BaseException:
            if con is not None:
                con.execute("rollback")
            raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
            shutil.rmtree(retired, ignore_errors=True)
    return target


def _record_members(con: duckdb.DuckDBPyConnection, files: AudienceFiles) -> None:
    """Replace this as_of's members in MEMBERS_TABLE, in a transaction left open for the caller."""
    members = members_table(files)
    con.execute("begin transaction")
    con.execute(f"create schema if not exists {MEMBERS_TABLE.split('.')[0]}")
    con.register("_segmart_members", members)
    con.execute(
        f"create table if not exists {MEMBERS_TABLE} as select * from _segmart_members limit 0"
    )
    con.execute(f"delete from {MEMBERS_TABLE} where exported_on = ?", [files.as_of])
    con.execute(f"insert into {MEMBERS_TABLE} by name select * from _segmart_members")
    con.unregister("_segmart_members")


def export_audiences(settings: Settings) -> Path:
    """Export marketing.campaign_audiences of the working warehouse; return the directory.

    Example: after `segmart run`, exports/2025-10-01/win_back_high_value.csv. Without any
    marketing consent every file is empty and the manifest's `note` says why.
    """
    with connect(settings.warehouse, read_only=True) as con:
        if not table_exists(con, AUDIENCES_TABLE):
            raise SegmartError(
                f"{AUDIENCES_TABLE} is missing: run `segmart run` (or score, then"
                " `dbt build --selector marketing`) before exporting"
            )
        selected = read_table(con, AUDIENCES_TABLE)
        playbook = read_table(con, PLAYBOOK_TABLE, ["audience", "priority", "as_of", "model_id"])
        no_consent = consent_gap(read_coverage(con)) if selected.num_rows == 0 else None
    names = [row["audience"] for row in playbook.sort_by("priority").to_pylist()]
    if selected.num_rows > 0:
        files = split_audiences(selected, names)
        return write_export(files, settings.exports_dir, settings.warehouse)
    # Empty with consent is a broken playbook or model (the build's tests fail on it first).
    if no_consent is None:
        raise SegmartError(
            f"{AUDIENCES_TABLE} is empty: no opted-in customer matches the playbook"
            " (seeds/audience_playbook.csv)"
        )
    first = playbook.slice(0, 1).to_pylist()
    run = (first[0]["as_of"], first[0]["model_id"]) if first else None
    files = replace(split_audiences(selected, names, run), note=no_consent.sentence)
    return write_export(files, settings.exports_dir, settings.warehouse)
