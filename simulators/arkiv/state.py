"""State of the archive simulator: the packages it accepted (by OBJID, with the SHA-256 of the
zip and the archive id it gave), and every delivery it judged."""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass, field


@dataclass
class Received:
    objid: str
    sha256: str
    archive_id: str
    received: dt.datetime
    files: int
    size: int


@dataclass
class ArchiveState:
    accepted: dict[str, Received] = field(default_factory=dict)
    deliveries: list[dict] = field(default_factory=list)  # every POST: objid, sha256, status, reasons
    refuse_matching: str | None = None  # tests: refuse every package whose OBJID contains this
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next_archive_id(self) -> str:
        return f"SE-ARKIV-{len(self.accepted) + 1:06d}"

    def reset(self) -> None:
        with self.lock:
            self.accepted.clear()
            self.deliveries.clear()
