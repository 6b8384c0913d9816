"""dbt's partial parse, kept per set of vars and shared between workspaces.

dbt keeps one partial-parse file (target/partial_parse.msgpack) and parses the whole project
again (about 5 s) whenever the file's state check differs: the vars, the target, or a hash of
the profile's connection info. On DuckDB that hash covers the warehouse path and the
workspace's hash key. So `segmart run`, which builds with and without a champion's statistics
(different vars), parsed twice, and the first build in every new workspace (every test) parsed
from scratch.

One file is saved per set of vars, target, database and schema, and restored into another
workspace with that workspace's profile hash written in. Nothing else the hash guards reaches a
parse: a node's database and schema are in the key, and the project reads no other profile
value at parse time (only target.type, target.database and target.schema). dbt still checks
every file, and re-parses those that read an env var whose value changed.
"""

from __future__ import annotations

import contextvars
import hashlib
import json
import os
import pprint
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from dbt.config.profile import Profile, read_profile
from dbt.config.renderer import ProfileRenderer
from dbt.constants import PARTIAL_PARSE_FILE_NAME
from dbt.contracts.files import FileHash
from dbt.exceptions import DbtProfileError
from dbt_common.context import set_invocation_context

from ml.config import PROFILES_DIR, Settings

# Partial-parse files kept in the dbt target dir (about 2 MB each), most recently used.
_MAX_KEPT = 8
_PROFILE_NAME = "segmart"


def _profile_hash_and_placement(settings: Settings, variables: dict) -> tuple[str, tuple] | None:
    """dbt's profile hash for this workspace, and where its nodes go (database, schema).

    Rendered as dbt renders the profile (under the workspace's environment variables), hashed
    as dbt-core's `ManifestLoader.build_manifest_state_check` does. Should dbt hash otherwise,
    the restored file fails dbt's check and dbt parses in full, as it did before. None when
    the profile is missing or does not render: dbt's own invocation then reports why.
    """

    def render() -> tuple[str, tuple]:
        set_invocation_context(os.environ)
        raw = read_profile(str(PROFILES_DIR))[_PROFILE_NAME]
        target, data = Profile.render_profile(
            raw, _PROFILE_NAME, settings.target, ProfileRenderer(variables)
        )
        data.pop("threads", None)
        credentials = Profile._credentials_from_profile(data, _PROFILE_NAME, target)
        connection = sorted(credentials.connection_info())
        profile_hash = FileHash.from_contents(pprint.pformat(connection)).checksum
        return profile_hash, (credentials.database, credentials.schema)

    try:
        return contextvars.copy_context().run(render)
    except (DbtProfileError, KeyError):  # KeyError: profiles.yml has no `segmart` profile
        return None


def _parse_key(variables_json: str, target: str, placement: tuple) -> str:
    """What a parse depends on besides the project's files and the env vars dbt tracks."""
    text = json.dumps([json.loads(variables_json), target, list(placement)], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@contextmanager
def partial_parse_for(settings: Settings, variables_json: str, target_dir: Path) -> Iterator[None]:
    """Let dbt start from the partial parse saved for these vars, then save the one it leaves."""
    profile = _profile_hash_and_placement(settings, json.loads(variables_json))
    if profile is None:
        yield
        return
    profile_hash, placement = profile
    key = _parse_key(variables_json, settings.target, placement)
    current = target_dir / PARTIAL_PARSE_FILE_NAME
    folder = target_dir / "partial_parses" / key
    saved = max(folder.glob("*.msgpack"), key=_modified_ns, default=None)
    with suppress(OSError):  # another process pruned it meanwhile: dbt parses in full
        if saved is not None and _restore(saved, current, profile_hash):
            os.utime(saved)  # recently used: pruned last
    before = _modified_ns(current)
    yield
    if _modified_ns(current) != before:  # dbt parsed and wrote a new one
        _write_atomically(folder / f"{profile_hash}.msgpack", current.read_bytes())
        for stale in folder.glob("*.msgpack"):
            if stale.stem != profile_hash:
                stale.unlink(missing_ok=True)
        _prune(target_dir / "partial_parses")


def _restore(saved: Path, current: Path, profile_hash: str) -> bool:
    """Copy `saved` (named after the profile hash it was parsed under) over dbt's file."""
    content = saved.read_bytes()
    old = saved.stem.encode()
    if saved.stem != profile_hash:
        # The hash is a fixed-length string in the msgpack: swapped in place, it stays valid.
        if content.count(old) != 1:
            return False
        content = content.replace(old, profile_hash.encode())
    _write_atomically(current, content)
    return True


def _prune(folder: Path) -> None:
    for old in folder.glob("*.msgpack"):  # the layout before: one file per vars, no folder
        old.unlink(missing_ok=True)
    kept = sorted(folder.glob("*/*.msgpack"), key=_modified_ns)
    for stale in kept[:-_MAX_KEPT]:
        stale.unlink(missing_ok=True)
        with suppress(OSError):
            stale.parent.rmdir()  # the key's folder, once empty


def _write_atomically(destination: Path, content: bytes) -> None:
    """Other processes may read `destination` meanwhile: they see the old or the new file."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_name(f".{destination.name}.{os.getpid()}")
    partial.write_bytes(content)
    os.replace(partial, destination)


def _modified_ns(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except FileNotFoundError:
        return -1
