"""Operator command groups of the ``brygga`` CLI (each module: ``register(subparsers)``)."""

import json
import sys
from typing import Any


def dump_json(obj: Any) -> None:
    """What every ``--json`` prints: indented, UTF-8 as it is, dates as strings, a final newline."""
    json.dump(obj, sys.stdout, indent=2, ensure_ascii=False, default=str)
    print()
