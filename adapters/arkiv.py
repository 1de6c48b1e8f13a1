"""The digital archive (e-arkiv): E-ARK SIP packages delivered by ``POST /arkiv/v1/paket`` (the
zip, streamed from a file), answered with a kvittens (``schemas/arkiv/kvittens-1.xsd``) read by
the ``arkiv.kvittens`` mapping. ``GET /arkiv/v1/paket/{OBJID}`` asks whether a package is held.

The archive recognises a resend by the package's OBJID and bytes (``redan-mottaget``). A package
it refuses (422) comes back as a receipt with the reasons, never as an error: it is not retried as
it is. A 409 (it holds the OBJID with other bytes) is a package it holds: the OBJID is made of the
content, so the archive's receipt for it is taken (``redan-mottaget``)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from adapters.http import TransportError, reading, segment, session, status_error, transport_error
from brygga.config import ArchiveSettings, PeerConfig, settings_as
from brygga.records import ArchiveReceipt
from mappings import registry


class ArchiveAdapter:
    def __init__(self, peer: PeerConfig):
        self.peer = peer
        self.base = peer.base_url.rstrip("/")
        self.http = session(peer, pool=2)
        self.receipts = registry.select("arkiv", "kvittens", peer.mappings)
        # a package is large: its upload gets its own deadline (seconds), at least the exchange's
        self.settings = settings_as(peer, ArchiveSettings)
        self.upload_timeout = self.settings.upload_timeout or max(600.0, peer.timeout)

    def _receipt(self, what: str, status: int, content: bytes) -> ArchiveReceipt:
        with reading("arkiv", f"{what} (HTTP {status})", len(content), transient=status >= 500):
            return self.receipts.read(content)

    def submit(self, package: Path) -> ArchiveReceipt:
        """Deliver one package (a zip on disk, streamed); the archive's receipt."""
        try:
            with open(package, "rb") as f:
                r = self.http.request("POST", self.base + "/arkiv/v1/paket", data=f,
                                      headers={"Content-Type": "application/zip"}, timeout=self.upload_timeout)
                content = r.content
        except TransportError as e:
            raise transport_error("arkiv", e) from None
        if r.status_code in (200, 422):
            return self._receipt("POST /arkiv/v1/paket", r.status_code, content)
        if r.status_code == 409:
            # the archive holds a package under this OBJID with other bytes. The OBJID is made of
            # the content, so it holds this content (written by another Brygga version, say): the
            # package is received; its receipt is the archive's for the package it holds
            refused = self._receipt("POST /arkiv/v1/paket", 409, content)
            held = self.held(refused.package_id)
            return refused if held is None else replace(held, status="redan-mottaget")
        raise status_error("arkiv", "POST /arkiv/v1/paket", r.status_code, r.headers, f"{content[:300]!r}")

    def held(self, objid: str) -> ArchiveReceipt | None:
        """The archive's receipt of an accepted package, or None if it holds no such package."""
        try:
            r = self.http.request("GET", f"{self.base}/arkiv/v1/paket/{segment(objid)}", timeout=self.peer.timeout)
            content = r.content
        except TransportError as e:
            raise transport_error("arkiv", e) from None
        if r.status_code == 404:
            return None
        if r.status_code != 200:
            raise status_error("arkiv", f"GET /arkiv/v1/paket/{objid}", r.status_code, r.headers)
        return self._receipt("GET /arkiv/v1/paket", 200, content)
