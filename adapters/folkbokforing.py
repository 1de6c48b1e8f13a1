"""Population register (folkbokföring): batch person lookup for establishing students."""

from __future__ import annotations

from collections.abc import Iterable

from adapters.http import TransportError, reading, session, status_error, transport_error
from brygga.config import PeerConfig
from brygga.records import Student
from mappings import registry
from mappings.base import RecordError

BATCH = 1000  # the register answers at most 1000 numbers per request


class FolkbokforingAdapter:
    def __init__(self, peer: PeerConfig, *, mappings: dict[str, int] | None = None):
        self.peer = peer
        self.base = peer.base_url.rstrip("/")
        self.http = session(peer)
        self.people = registry.select("folkbokforing", "person",
                                      mappings if mappings is not None else peer.mappings)

    def lookup(self, personnummer: Iterable[str]) -> dict[str, Student | None | RecordError]:
        """{number: Student (protected people without address) | None (not in the register) | RecordError}."""
        numbers = list(dict.fromkeys(personnummer))
        out: dict[str, Student | None | RecordError] = {}
        for i in range(0, len(numbers), BATCH):
            chunk = numbers[i:i + BATCH]
            try:
                r = self.http.post(self.base + "/folkbokforing/personer", data=self.people.write_batch(chunk),
                                   headers={"Content-Type": "application/xml"}, timeout=self.peer.timeout, stream=True)
            except TransportError as e:
                raise transport_error("folkbokforing", e) from None
            try:
                if r.status_code != 200:
                    raise status_error("folkbokforing", "POST /folkbokforing/personer", r.status_code, r.headers)
                # A reply that cannot be read (cut short, an HTML page, a DTD) or does not answer what
                # was asked is used not at all, and is transient like any other failure of the
                # register: the batch's students stay pending and are looked up again next run.
                with reading("folkbokforing", "POST /folkbokforing/personer", transient=True, also=(ValueError,)):
                    out.update(self.people.read_batch(r.raw, chunk))
            finally:
                r.close()
        return out
