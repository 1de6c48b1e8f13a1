"""Well-known locations inside the project checkout (the project is installed editable)."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCHEMAS = ROOT / "schemas"
MAPPINGS = ROOT / "mappings"


def var_dir() -> Path:
    """Directory for runtime state of the embedded default (SQLite files, logs)."""
    p = Path(os.environ.get("BRYGGA_VAR", ROOT / "var"))
    p.mkdir(parents=True, exist_ok=True)
    return p
