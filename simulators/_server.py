"""Run an ASGI app on a real loopback port: in a background thread (tests), in a forked process
(benchmarks) or in the foreground."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import multiprocessing.process

import uvicorn


@dataclass
class RunningServer:
    url: str
    port: int
    _server: uvicorn.Server
    _thread: threading.Thread

    def stop(self, timeout: float = 10.0) -> None:
        self._server.should_exit = True
        self._thread.join(timeout)

    def __enter__(self) -> RunningServer:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def _bind(host: str, port: int) -> socket.socket:
    # proto=IPPROTO_TCP matters: asyncio sets TCP_NODELAY on accepted connections only when the
    # listening socket says it is TCP (``asyncio.base_events._set_nodelay`` checks ``sock.proto``).
    # A socket made with proto 0 left Nagle on, and uvicorn writes the status line + headers and
    # the body as two writes, so every reply waited ~40 ms for the client's delayed ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


def serve_in_thread(app, host: str = "127.0.0.1", port: int = 0, log_level: str = "warning") -> RunningServer:
    """Start ``app`` on ``host:port`` (0 = a free port) and wait until it accepts connections."""
    sock = _bind(host, port)
    actual_port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level=log_level, access_log=False, lifespan="off", loop="asyncio")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True, name=f"sim-{actual_port}")
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"simulator on port {actual_port} did not start")
        time.sleep(0.01)
    return RunningServer(url=f"http://{host}:{actual_port}", port=actual_port, _server=server, _thread=thread)


@dataclass
class RunningProcess:
    url: str
    port: int
    process: multiprocessing.process.BaseProcess

    def stop(self, timeout: float = 10.0) -> None:
        if self.process.is_alive():
            self.process.terminate()
        self.process.join(timeout)

    def __enter__(self) -> RunningProcess:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def _serve_socket(app, sock: socket.socket, log_level: str) -> None:
    config = uvicorn.Config(app, log_level=log_level, access_log=False, lifespan="off", loop="asyncio")
    uvicorn.Server(config).run(sockets=[sock])


def serve_in_process(app, host: str = "127.0.0.1", port: int = 0, log_level: str = "warning") -> RunningProcess:
    """Like ``serve_in_thread``, but in a forked child process that gets a copy of ``app`` and its
    state as they are now (benchmarks: the peer's CPU work does not share the caller's GIL, as
    with a real remote peer). Later changes reach it only over HTTP (e.g. ``/sim/`` control).
    Call it before starting threads (fork)."""
    import multiprocessing

    sock = _bind(host, port)
    actual_port = sock.getsockname()[1]
    proc = multiprocessing.get_context("fork").Process(target=_serve_socket, args=(app, sock, log_level),
                                                       daemon=True, name=f"sim-{actual_port}")
    proc.start()
    sock.close()
    url = f"http://{host}:{actual_port}"
    deadline = time.monotonic() + 15
    while True:
        try:
            with socket.create_connection((host, actual_port), timeout=1):
                break
        except OSError:
            if not proc.is_alive() or time.monotonic() > deadline:
                proc.terminate()
                raise RuntimeError(f"simulator process on port {actual_port} did not start") from None
            time.sleep(0.02)
    return RunningProcess(url=url, port=actual_port, process=proc)


def serve_forever(app, host: str, port: int, log_level: str = "info") -> None:
    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False, lifespan="off")


async def read_body(request, limit: int) -> bytes | None:
    """The request body, or None when it is (or declares to be) larger than ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)
