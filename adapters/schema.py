"""The scheduling system (schemaläggning): one of three deliveries, by the ``brygga_schema``
Connection's ``extra.format``:

- ``timeedit`` (default): TimeEdit-style REST, ``POST /api/v1/objects/upsert?mode=PATCH`` with an
  ``Idempotency-Key`` (the outbox's RequestId), 207 per object; ``objects/validate`` is the dry
  run; ``GET /api/v1/objects`` is what the system holds (the nightly reconciliation).
- ``lis``: IMS LIS record documents, ``POST /lis/v1/records``, 207 per record.
- ``oneroster``: OneRoster 1.2 CSV zips written to ``extra.directory`` (``<RequestId>.zip``,
  written whole then renamed, so a reader never sees half a package and a repeat overwrites the
  same file with the same content).

The mapping version is ``extra.mappings`` (``{"timeedit": 1}``), else the lowest registered.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from adapters.http import PeerError, TransportError, reading, session, status_error, transport_error
from brygga.config import PeerConfig, ScheduleSettings, settings_as
from mappings import registry
from mappings.base import RecordError

FORMATS = ("timeedit", "lis", "oneroster")
Results = dict[str, tuple[str, "str | None"]]


class ScheduleAdapter:
    def __init__(self, peer: PeerConfig, *, format: str | None = None):
        self.peer = peer
        self.settings = settings_as(peer, ScheduleSettings)
        self.format = format or self.settings.format
        if self.format not in FORMATS:
            raise ValueError(f"unknown schedule format {self.format!r} (expected one of {', '.join(FORMATS)})")
        self.base = peer.base_url.rstrip("/")
        self.http = session(peer)
        self.mapping = registry.select("schema", self.format, peer.mappings)

    @property
    def target(self) -> str:
        """What the store keys this system's objects by: the format (one system per format)."""
        return self.format

    def _post(self, path: str, body: bytes, request_id: str | None) -> bytes:
        headers = {"Content-Type": self.mapping.media_type}
        if request_id:
            headers["Idempotency-Key"] = request_id
        try:
            r = self.http.request("POST", self.base + path, data=body, headers=headers, timeout=self.peer.timeout)
        except TransportError as e:
            raise transport_error("schema", e) from None
        if r.status_code not in (200, 207):
            raise status_error("schema", f"POST {path}", r.status_code, r.headers, f"{r.content[:300]!r}")
        return r.content

    def send(self, changes: list[dict[str, Any]], request_id: str, *, mode: str = "delta") -> tuple[Results, list[RecordError]]:
        """Deliver one batch; returns ({"<kind>:<ext_id>": (outcome, message)}, objects the
        mapping refused). Raises PeerError when the system could not take it."""
        kw = {"mode": mode} if self.format == "oneroster" else {}
        body, errors = self.mapping.write(changes, request_id=request_id, **kw)
        refused = {e.record_id for e in errors}
        sent = [f"{c['kind']}:{c['ext_id']}" for c in changes if f"{c['kind']}:{c['ext_id']}" not in refused]
        if not sent:
            return {}, errors
        if self.format == "oneroster":
            self._write_package(body, request_id)
            return {k: ("ok", None) for k in sent}, errors
        path = "/api/v1/objects/upsert?mode=PATCH" if self.format == "timeedit" else "/lis/v1/records"
        return self.mapping.read_results(self._post(path, body, request_id)), errors

    def validate(self, changes: list[dict[str, Any]]) -> tuple[Results, list[RecordError]]:
        """The dry run: what the system would answer (TimeEdit's ``objects/validate``); for the
        file and LIS formats, what the mapping would refuse."""
        body, errors = self.mapping.write(changes, request_id="dry-run")
        if self.format != "timeedit":
            return {}, errors
        return self.mapping.read_results(self._post("/api/v1/objects/validate", body, None)), errors

    def pages(self, *, limit: int = 5000) -> Iterator[dict[str, tuple[str, bool]]]:
        """What the system holds, page by page: {"<kind>:<ext_id>": (content hash, active)}
        (TimeEdit only)."""
        if self.format != "timeedit":
            raise NotImplementedError(f"{self.format}: the system cannot be read back")
        page = 1
        while True:
            try:
                r = self.http.request("GET", self.base + "/api/v1/objects", params={"page": page, "limit": limit},
                                      timeout=self.peer.timeout)
            except TransportError as e:
                raise transport_error("schema", e) from None
            if r.status_code != 200:
                raise status_error("schema", "GET /api/v1/objects", r.status_code, r.headers)
            with reading("schema", "GET /api/v1/objects", len(r.content), also=(ValueError, TypeError, AttributeError)):
                total, held = self.mapping.read_objects(r.content)
            if held:
                yield held
            if not held or page * limit >= total:
                return
            page += 1

    def _write_package(self, body: bytes, request_id: str) -> None:
        directory = Path(self.settings.directory or "")
        if not str(directory) or not directory.is_dir():
            raise PeerError("schema", f"OneRoster delivery directory {str(directory) or '(not set)'} does not exist",
                            transient=True)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".incoming-", suffix=".zip")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(body)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, directory / f"{request_id}.zip")
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
