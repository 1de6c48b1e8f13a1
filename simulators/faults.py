"""The simulators' fault plan (issue 33): what a peer does wrong, and when, so the same run can be
made faulty on purpose and compared with a clean one. Every simulator's app is wrapped in
``FaultMiddleware``; with no plan it passes every request through untouched.

A **fault** names a kind, the requests it watches (a regular expression over
``"<METHOD> <path> <SOAPAction>"``) and which of them it hits (``nth``, 1-based; ``times`` in a
row from there). Kinds:

* before the peer does anything: ``500``, ``503`` and ``429`` (both with ``Retry-After: 1``);
  ``kill-before``: the client process is killed (SIGKILL, the plan's ``victim``) while its request
  waits — "between two peer calls";
* after the peer did the work (the dangerous ones: the effect exists, the answer is lost):
  ``hang`` (the answer after ``seconds``, past the client's deadline), ``cut`` (half the body,
  then the connection closed), ``reset`` (the connection dropped, no answer at all), ``kill``
  (the client killed before it reads the answer — "after the peer accepted, before Brygga
  recorded it");
* on what is read: ``duplicate`` (one record of the reply twice: a feed entry, a NyA record),
  ``reorder`` (a reply's records in reverse order), ``stale`` (the reply this path gave the
  time before, served late — a feed page out of date).

Control: ``POST /sim/faults`` ``{"faults": [...], "victim": pid}`` sets the plan (an empty list
clears it), ``GET /sim/faults`` returns it with what fired (``injected``).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import threading
from dataclasses import asdict, dataclass, field
from typing import Any

BEFORE = ("500", "503", "429", "kill-before")
AFTER = ("hang", "cut", "reset", "kill")
READ = ("duplicate", "reorder", "stale")
KINDS = BEFORE + AFTER + READ
#: the record elements of a reply (local names) that ``duplicate`` and ``reorder`` act on
RECORDS = ("entry", "Admission", "Aterbud", "ConditionChange", "Applicant", "Applied")


@dataclass
class Fault:
    kind: str
    match: str  # a regular expression over "<METHOD> <path> <SOAPAction>"
    nth: int = 1  # the first matching request it hits
    times: int = 1  # how many matching requests in a row from there
    seconds: float = 3.0  # hang: how long
    seen: int = 0  # matching requests so far
    fired: int = 0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; known: {', '.join(KINDS)}")
        self._re = re.compile(self.match)


@dataclass
class FaultPlan:
    faults: list[Fault] = field(default_factory=list)
    victim: int | None = None  # the client process ``kill`` and ``kill-before`` kill
    injected: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FaultPlan:
        return cls([Fault(**{k: v for k, v in f.items() if k in ("kind", "match", "nth", "times", "seconds")})
                    for f in data.get("faults", [])], victim=data.get("victim"))

    def take(self, key: str) -> Fault | None:
        """The fault that hits this request, if any (each matching fault counts it)."""
        hit = None
        with self._lock:
            for f in self.faults:
                if f._re.search(key):
                    f.seen += 1
                    if f.nth <= f.seen < f.nth + f.times:
                        if hit is None:
                            f.fired += 1
                            hit = f
                        else:  # another fault has this request: this one takes the next
                            f.nth += 1
            if hit is not None:
                self.injected.append({"kind": hit.kind, "request": key[:200], "n": hit.seen})
        return hit

    def view(self) -> dict[str, Any]:
        with self._lock:
            return {"victim": self.victim, "injected": list(self.injected),
                    "faults": [{k: v for k, v in asdict(f).items()} for f in self.faults]}

    def kill(self) -> None:
        if self.victim:
            try:
                os.kill(self.victim, signal.SIGKILL)
            except ProcessLookupError:
                pass


class FaultMiddleware:
    """ASGI: the plan's faults on the wrapped app's requests; ``/sim/faults`` sets and shows it."""

    def __init__(self, app: Any, plan: FaultPlan | None = None):
        self.app = app
        self.plan = plan or FaultPlan()
        self._last: dict[str, bytes] = {}  # GET path -> the body it gave last ("stale")

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if scope["path"] == "/sim/faults":
            return await self._control(scope, receive, send)
        if not self.plan.faults:
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        key = f"{scope['method']} {scope['path']} {headers.get(b'soapaction', b'').decode('latin-1')}"
        fault = self.plan.take(key)
        if fault is None and scope["method"] != "GET":
            return await self.app(scope, receive, send)
        if fault is not None and fault.kind in BEFORE:
            if fault.kind == "kill-before":
                self.plan.kill()
            extra = [(b"retry-after", b"1")] if fault.kind in ("503", "429") else []
            status = 500 if fault.kind == "kill-before" else int(fault.kind)
            return await _reply(send, status, b"simulated fault: " + fault.kind.encode(), extra)
        status, out_headers, body = await _collect(self.app, scope, receive)
        path = scope["path"] + "?" + scope.get("query_string", b"").decode("latin-1")
        if scope["method"] == "GET" and status == 200:
            previous, self._last[path] = self._last.get(path), body
            if fault is not None and fault.kind == "stale" and previous is not None:
                body = previous
        if fault is None or fault.kind == "stale":
            return await _reply(send, status, body, out_headers)
        if fault.kind in ("duplicate", "reorder"):
            return await _reply(send, status, _records(body, fault.kind), out_headers)
        if fault.kind == "hang":
            await asyncio.sleep(fault.seconds)
            return await _reply(send, status, body, out_headers)
        if fault.kind == "kill":
            self.plan.kill()
            return await _reply(send, status, body, out_headers)
        if fault.kind == "reset":
            cycle = getattr(receive, "__self__", None) or getattr(send, "__self__", None)  # uvicorn's
            transport = getattr(cycle, "transport", None)
            if transport is not None:
                transport.abort()  # no answer at all: the connection dropped after the work was done
                return None
        # cut (and reset where the server gives no transport): half the body, then the connection closes
        await send({"type": "http.response.start", "status": status,
                    "headers": _without_length(out_headers) + [(b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body[: len(body) // 2], "more_body": True})
        raise ConnectionAbortedError("simulated fault: reply cut short")

    async def _control(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["method"] == "POST":
            raw = b""
            while True:
                m = await receive()
                raw += m.get("body", b"")
                if not m.get("more_body"):
                    break
            try:
                plan = FaultPlan.from_json(json.loads(raw or b"{}"))
            except (ValueError, TypeError) as e:
                return await _reply(send, 400, str(e).encode(), [(b"content-type", b"text/plain")])
            self.plan, self._last = plan, {}
        return await _reply(send, 200, json.dumps(self.plan.view()).encode(), [(b"content-type", b"application/json")])


def with_faults(app: Any) -> FaultMiddleware:
    """``app`` with a fault plan (empty: every request passes through)."""
    return FaultMiddleware(app)


async def _collect(app: Any, scope: dict[str, Any], receive: Any) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    start: dict[str, Any] = {}
    chunks: list[bytes] = []

    async def capture(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            start.update(message)
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, capture)
    return int(start.get("status", 500)), list(start.get("headers", [])), b"".join(chunks)


def _without_length(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    return [(k, v) for k, v in headers if k.lower() != b"content-length"]


async def _reply(send: Any, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": _without_length(headers) + [(b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def _records(body: bytes, kind: str) -> bytes:
    """The reply with its first record twice (``duplicate``) or its records reversed (``reorder``);
    a body that is no XML, or has no records, as it was."""
    from lxml import etree

    try:
        root = etree.fromstring(body, etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False))
    except etree.XMLSyntaxError:
        return body
    for parent in root.iter():
        records = [c for c in parent if isinstance(c.tag, str) and etree.QName(c).localname in RECORDS]
        if not records:
            continue
        if kind == "duplicate":
            records[0].addnext(etree.fromstring(etree.tostring(records[0])))
        elif len(records) > 1:
            at = parent.index(records[0])
            for r in records:
                parent.remove(r)
            for i, r in enumerate(reversed(records)):
                parent.insert(at + i, r)
        return etree.tostring(root, xml_declaration=True, encoding="UTF-8")
    return body
