"""Run the real `segmart` command in a workspace of its own, as a user would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SEGMART = Path(sys.executable).with_name("segmart")


def segmart(workspace: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`segmart <args>` with every output (warehouse, models, BI, reports, exports) in workspace.

    SEGMART_DEBUG is dropped so errors print as users see them: one line, no traceback.
    """
    env = os.environ | {
        "SEGMART_WAREHOUSE": str(workspace / "segmart.duckdb"),
        "SEGMART_MODELS_DIR": str(workspace / "models"),
        "SEGMART_PUBLISHED_DIR": str(workspace / "published"),
        "SEGMART_REPORTS_DIR": str(workspace / "reports"),
        "SEGMART_EXPORTS_DIR": str(workspace / "exports"),
    }
    env.pop("SEGMART_DEBUG", None)
    return subprocess.run(
        [str(SEGMART), *args], env=env, capture_output=True, text=True, timeout=900
    )
