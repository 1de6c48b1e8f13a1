"""Fixtures of the adapter tests: the simulators (as the mapping tests use them) and a scripted
peer that answers what a test tells it to, recording each request."""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.mappings.conftest import ladok_sim, nya_sim  # noqa: F401  (same simulator fixtures)


class Script:
    """What the peer answers next: a queue of (status, headers, body, delay); the last one repeats."""

    def __init__(self) -> None:
        self.answers: list[tuple[int, dict[str, str], bytes, float]] = []
        self.requests: list[tuple[str, str, float]] = []

    def then(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None, delay: float = 0.0) -> Script:
        self.answers.append((status, headers or {}, body, delay))
        return self

    def next(self) -> tuple[int, dict[str, str], bytes, float]:
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


@pytest.fixture
def peer() -> Iterator[tuple[str, Script]]:
    script = Script()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            script.requests.append((self.command, self.path, time.monotonic()))
            status, headers, body, delay = script.next()
            if delay:
                time.sleep(delay)
            self.send_response(status)
            for k, v in {"Content-Type": "application/xml", **headers}.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_DELETE = _answer

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", script
    finally:
        server.shutdown()
        server.server_close()
