"""Reading inbound payloads so that bad input is quarantined and the batch goes on."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.orm import Session

from brygga import xmlsafe
from brygga.store import ops

T = TypeVar("T")
MAX_QUARANTINED_PAYLOAD = 1 << 20  # keep at most 1 MiB of a refused payload


def read_or_quarantine(
    session: Session, *, source: str, message_id: str, kind: str, payload: bytes,
    read: Callable[[bytes], T],
) -> T | None:
    """``read(payload)``; unsafe or malformed XML is quarantined with its reason -> None."""
    try:
        return read(payload)
    except (xmlsafe.UnsafeXML, xmlsafe.MalformedXML) as e:
        ops.quarantine(session, source=source, message_id=message_id, kind=kind, reason=str(e),
                       payload=payload[:MAX_QUARANTINED_PAYLOAD])
        return None


def quarantine_record_errors(session: Session, source: str, errors, payload_of=None) -> int:
    """Quarantine ``RecordError``s of a batch (record id, field and rule in the reason)."""
    for err in errors:
        ops.quarantine(session, source=source, message_id=err.record_id, kind=err.kind,
                       reason=str(err), payload=payload_of(err) if payload_of else None)
    return len(errors)
