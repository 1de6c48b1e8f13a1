"""What every schedule export format implements (``ScheduleFormat``).

A change (the export's plan, one object: ``op`` upsert/deactivate/delete, ``kind``, ``ext_id``,
``fields``, ``active``, ``instance_uid``, ``organisation``) is **encoded once**, when it is
planned: ``encode`` returns the object's wire item (JSON-able: the outbox keeps it), or None when
the format has nothing of its own for the object, or raises ``Refused`` for a value the system
would refuse. ``lane`` names the request an item goes in (TimeEdit deletes through its own
endpoint). When a batch is sent, ``body`` joins its items; nothing is encoded again.
"""

from __future__ import annotations

from typing import Any

from mappings.base import Mapping

TEXT_MAX = 255  # the scheduling systems' text fields
EXT_ID_MAX = 128


class Refused(Exception):
    """A value of the object the format (the system) refuses: the object is not sent."""

    def __init__(self, field: str, rule: str):
        super().__init__(f"{field}: {rule}")
        self.field, self.rule = field, rule


def check(change: dict[str, Any]) -> None:
    """Refuses an id or a text the systems' columns would not take."""
    if not 1 <= len(change["ext_id"]) <= EXT_ID_MAX:
        raise Refused("extId", f"1..{EXT_ID_MAX} characters")
    for name, value in (change.get("fields") or {}).items():
        if isinstance(value, str) and (len(value) > TEXT_MAX or not value.isprintable()):
            raise Refused(name, f"at most {TEXT_MAX} printable characters")


class ScheduleFormat(Mapping):
    """A schedule export format. ``batch``: objects per delivery (one request, file or package)."""

    batch = 500
    media_type = "application/json"

    def lane(self, change: dict[str, Any]) -> str:
        return "upsert"

    def encode(self, change: dict[str, Any], *, organizations: tuple[str, ...] = (),
               stamp: str = "") -> Any:
        raise NotImplementedError

    def body(self, lane: str, items: list[Any], *, request_id: str) -> bytes:
        raise NotImplementedError

    def read_results(self, body: bytes) -> dict[str, tuple[str, str | None]]:
        """The system's answer per object: {"<kind>:<ext_id>": (outcome, message)}."""
        return {}
