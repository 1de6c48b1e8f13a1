"""The scheduling system (schemaläggning): one of four deliveries, by the ``brygga_schema``
Connection's ``extra.format`` (docs/contracts/schema.md):

- ``timeedit`` (default): TimeEdit's REST API (``{host}/v1``): the API key (the Connection's
  password) exchanged for a short-lived token at ``/v1/organizations/{organization_id}/api-keys/
  authenticate`` (``X-Region``), then ``Authorization: Bearer``; ``POST /v1/objects/upsert``
  (importMode PATCH), ``DELETE /v1/objects`` (the bulk delete), both 207 per object;
  ``POST /v1/objects/validate`` is the dry run; ``POST /v1/objects/find`` pages what the system
  holds (the nightly reconciliation).
- ``timeedit-file``: TimeEdit's XML import files, one per batch, written to ``extra.directory``.
- ``lis``: IMS LIS 2.0 records, one AMQP 1.0 message each to ``extra.address`` at the broker the
  Connection names (``amqp://`` / ``amqps://``), as the Ladok-LIS adapter delivers them; or, with
  ``extra.transport`` ``http``, Brygga's HTTP form (``POST /lis/v2/records``, 207 per record).
- ``oneroster``: OneRoster 1.2 CSV zips written to ``extra.directory``.

A file is written whole under a temporary name, then renamed (``<RequestId>.zip|.xml``): a
reader never sees half of one and a repeat overwrites it with the same content. The mapping
version is ``extra.mappings`` (``{"timeedit": 2}``), else the lowest registered.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from adapters import amqp
from adapters.http import PeerError, TransportError, reading, segment, session, status_error, transport_error
from brygga.config import PeerConfig, ScheduleSettings, SettingsError, settings_as
from mappings import registry
from mappings.base import RecordError
from mappings.schema.base import Refused
from mappings.schema.oneroster import stamp as oneroster_stamp
from mappings.schema.timeedit import TYPE_OF

FORMATS = ("timeedit", "timeedit-file", "lis", "oneroster")
Results = dict[str, tuple[str, "str | None"]]
FILE_SUFFIX = {"oneroster": ".zip", "timeedit-file": ".xml"}


class ScheduleAdapter:
    def __init__(self, peer: PeerConfig, *, format: str | None = None):
        self.peer = peer
        self.settings = settings_as(peer, ScheduleSettings)
        self.format = format or self.settings.format
        if self.format not in FORMATS:
            raise ValueError(f"unknown schedule format {self.format!r} (expected one of {', '.join(FORMATS)})")
        if self.format == "timeedit" and not (self.settings.organization_id and peer.password
                                              and self.settings.default_organization):
            raise SettingsError("Connection brygga_schema: TimeEdit needs its API key (the password), "
                                "extra.organization_id (the organisation the key belongs to) and "
                                "extra.default_organization (the TimeEdit organization of students)")
        self.base = peer.base_url.rstrip("/")
        self.amqp = self.format == "lis" and self.settings.transport == "amqp"
        self.http = None if self.amqp or self.format in FILE_SUFFIX else session(peer)
        self.mapping = registry.select("schema", self.format, peer.mappings)
        self._token: str | None = None
        self._lock = threading.Lock()

    @property
    def target(self) -> str:
        """What the store keys this system's objects by: the format (one system per format)."""
        return self.format

    @property
    def batch(self) -> int:
        """Objects per delivery (a request, a file, a package)."""
        return int(self.settings.batch or self.mapping.batch)

    # ------------------------------------------------------------------ planning: encode once
    def organizations(self, change: dict[str, Any]) -> tuple[str, ...]:
        """The TimeEdit organizations of an object (its unit's, mapped; students the default). A
        deactivation names none: under PATCH the object keeps its unit's (the change has no unit)."""
        if self.format not in ("timeedit", "timeedit-file") or change["op"] != "upsert":
            return ()
        unit = change.get("organisation")
        named = (self.settings.organizations or {}).get(unit) if unit else None
        org = named or (unit if unit and not self.settings.organizations else None) or self.settings.default_organization
        return (org,) if org else ()

    def encode(self, change: dict[str, Any]) -> tuple[str, Any] | RecordError | None:
        """(lane, wire item) of one change, None when the format has nothing of its own for it, or
        the RecordError naming the value the system would refuse."""
        try:
            item = self.mapping.encode(change, organizations=self.organizations(change),
                                       stamp=oneroster_stamp() if self.format == "oneroster" else "")
        except Refused as e:
            return RecordError(f"{change['kind']}:{change['ext_id']}", e.field, e.rule, "schedule-object")
        return None if item is None else (self.mapping.lane(change), item)

    # ------------------------------------------------------------------ sending
    def deliver(self, lane: str, items: list[Any], keys: list[str], versions: list[int], request_id: str) -> Results:
        """Deliver one batch; {"<kind>:<ext_id>": (outcome, message)} per object (``ok``,
        ``in-use``, ``rejected``, ``failed``). Raises PeerError when the system could not take it."""
        if self.format in FILE_SUFFIX:
            self._write_file(self.mapping.body(lane, items, request_id=request_id), request_id)
            return dict.fromkeys(keys, ("ok", None))
        if self.amqp:
            records = [amqp.Record(i["xml"].encode(), f"{k}@{v}", {"OriginEvent": i["origin"], "RecordType": i["type"]})
                       for i, k, v in zip(items, keys, versions, strict=True)]
            outcomes = amqp.send(self.base, self.settings.address, records, user=self.peer.login,
                                 password=self.peer.password, timeout=self.peer.timeout,
                                 ca=self.peer.verify if isinstance(self.peer.verify, str) else None)
            return {k: ("ok", None) if o == "accepted" else ("rejected" if o == "rejected" else "failed", why)
                    for k, (o, why) in zip(keys, outcomes, strict=True)}
        body = self.mapping.body(lane, items, request_id=request_id)
        if self.format == "lis":
            answer = self.mapping.read_results(self._call("POST", "/lis/v2/records", body, {"Idempotency-Key": request_id}))
            ids = {f"{i['type']}:{i['id']}": k for i, k in zip(items, keys, strict=True)}
            return {ids.get(r, r): v for r, v in answer.items()}
        path = "/v1/objects" if lane == "delete" else "/v1/objects/upsert"
        with reading("schema", f"{lane} /v1/objects", also=(ValueError, TypeError, AttributeError)):
            return self.mapping.read_results(self._call("DELETE" if lane == "delete" else "POST", path, body))

    def validate(self, changes: list[dict[str, Any]]) -> tuple[Results, list[RecordError]]:
        """The dry run: what the system would answer to the upserts (TimeEdit's
        ``objects/validate``), and the objects the mapping refuses (every format)."""
        refused: list[RecordError] = []
        upserts: list[Any] = []
        for c in changes:
            got = self.encode(c)
            if isinstance(got, RecordError):
                refused.append(got)
            elif got is not None and got[0] == "upsert":
                upserts.append(got[1])
        if self.format != "timeedit" or not upserts:
            return {}, refused
        with reading("schema", "POST /v1/objects/validate", also=(ValueError, TypeError, AttributeError)):
            return self.mapping.read_results(self._call("POST", "/v1/objects/validate",
                                                        self.mapping.body("upsert", upserts, request_id="dry-run"))), refused

    def pages(self, *, limit: int = 1000) -> Iterator[dict[str, tuple[str, bool]]]:
        """What the system holds, page by page per type: {"<kind>:<ext_id>": (content hash,
        active)} (TimeEdit's ``objects/find``)."""
        if self.format != "timeedit":
            raise NotImplementedError(f"{self.format}: the system cannot be read back")
        for type_id in TYPE_OF.values():
            page = 1
            while True:
                reply = self._call("POST", "/v1/objects/find", self.mapping.find_body(type_id, page, limit))
                with reading("schema", "POST /v1/objects/find", len(reply), also=(ValueError, TypeError, AttributeError)):
                    pages, held = self.mapping.read_objects(reply)
                if held:
                    yield held
                if not held or page >= pages:
                    break
                page += 1

    # ------------------------------------------------------------------ the wire
    def _authenticate(self) -> str:
        """A token for the API key (TimeEdit's ``api-keys/authenticate``)."""
        what = "POST /v1/organizations/{id}/api-keys/authenticate"
        try:
            r = self.http.request(  # type: ignore[union-attr]
                "POST", f"{self.base}/v1/organizations/{segment(self.settings.organization_id)}/api-keys/authenticate",
                data=b"", headers={"Authorization": f"Api-Key {self.peer.password}", "X-Region": self.settings.region,
                                   "Accept": "application/json"}, timeout=self.peer.timeout)
        except TransportError as e:
            raise transport_error("schema", e) from None
        if r.status_code != 200:
            raise status_error("schema", what + (" (the API key was refused)" if r.status_code in (401, 403) else ""),
                               r.status_code, r.headers)
        with reading("schema", what, len(r.content), also=(ValueError, TypeError, KeyError)):
            token = str(json.loads(r.content)["token"])
        return token

    def _call(self, method: str, path: str, body: bytes, headers: dict[str, str] | None = None) -> bytes:
        """One request; TimeEdit's with its token, authenticated again once when it has expired."""
        for attempt in (0, 1):
            h = {"Content-Type": self.mapping.media_type, "Accept": "application/json", **(headers or {})}
            if self.format == "timeedit":
                with self._lock:
                    if self._token is None or attempt:
                        self._token = self._authenticate()
                    h["Authorization"] = f"Bearer {self._token}"
            try:
                r = self.http.request(method, self.base + path, data=body, headers=h,  # type: ignore[union-attr]
                                      timeout=self.peer.timeout)
            except TransportError as e:
                raise transport_error("schema", e) from None
            if r.status_code == 401 and self.format == "timeedit" and not attempt:
                continue  # the token expired: a new one, and the request once more
            if r.status_code not in (200, 207):
                raise status_error("schema", f"{method} {path}", r.status_code, r.headers, f"{r.content[:300]!r}")
            return r.content
        raise PeerError("schema", f"{method} {path}: the token was refused twice", status=401)

    def _write_file(self, body: bytes, request_id: str) -> None:
        directory = Path(self.settings.directory or "")
        if not str(directory) or not directory.is_dir():
            raise PeerError("schema", f"delivery directory {str(directory) or '(not set)'} does not exist",
                            transient=True)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".incoming-", suffix=FILE_SUFFIX[self.format])
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(body)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, directory / f"{request_id}{FILE_SUFFIX[self.format]}")
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
