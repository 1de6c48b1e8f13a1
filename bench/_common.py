"""Helpers the benchmarks share: free ports, serving a simulator in its own process, waiting for it,
and this process's memory from ``/proc/self/status``."""

from __future__ import annotations

import socket
import time


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(app, port: int) -> None:
    """Serve on the simulators' socket setup (TCP_NODELAY), with uvloop + httptools as a production
    ASGI server would, until the parent terminates us."""
    import uvicorn

    from simulators._server import _bind

    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off", loop="uvloop",
                            http="httptools", proxy_headers=False)
    uvicorn.Server(config).run(sockets=[_bind("127.0.0.1", port)])


def wait_port(port: int, timeout: float = 600) -> None:
    """Until something accepts connections on ``port``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on port {port}")


def proc_status(field: str) -> int:
    """A ``/proc/self/status`` size field (VmRSS, VmHWM) in bytes."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def reset_peak() -> bool:
    """Reset this process's RSS high-water mark (VmHWM) to its current RSS (Linux >= 4.0);
    whether it could. Needed because VmHWM otherwise still holds the imports' (or the parent's) peak."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False
