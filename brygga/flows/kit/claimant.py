"""Who holds a claim: a mark ``host:pid:token[:owner]`` a process writes on the rows it works on,
so the next try of the same task (the ``owner``: an Airflow task instance's identity, the same in
each of its tries) or any process on the same host can tell a claim whose holder died (kill -9)
from a live one, instead of waiting out a lease. Shared by the admission import's placement
claims, the merit snapshot's applicant claims and the archive export's delivery claims."""

from __future__ import annotations

import hashlib
import os
import socket
import uuid


def claimant(owner: str | None = None) -> str:
    """A claim mark: host, pid, a token (unique per call) and the owner's mark if given."""
    return f"{host()}:{os.getpid()}:{uuid.uuid4().hex[:12]}" + (f":{owner_mark(owner)}" if owner else "")


def owner_mark(owner: str) -> str:
    """The short, fixed-size form of an owner (a task instance's identity) in a claim mark."""
    return "o" + hashlib.sha256(owner.encode()).hexdigest()[:15]


def host() -> str:
    """This process's host as claims name it: a Celery worker named by BRYGGA_WORKER_NAME (make
    run-celery) counts as a host of its own, as two workers on two machines would."""
    name = os.environ.get("BRYGGA_WORKER_NAME")
    h = f"{name}@{socket.gethostname()}" if name else socket.gethostname()
    return h[:48]  # the mark stays within the column: 48 + pid + token + owner


def on_this_host(mark: str | None) -> bool:
    return bool(mark) and mark.startswith(f"{host()}:")  # type: ignore[union-attr]


def alive(mark: str) -> bool:
    """Whether the process of a mark made on this host still runs (this process counts as alive)."""
    try:
        pid = int(mark.split(":")[1])
    except (IndexError, ValueError):
        return False
    if pid == os.getpid():
        return True  # this process (another, concurrent call): its own finally gives it back
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def gone(mark: str | None, owner: str | None = None) -> bool:
    """A claim its holder can no longer finish: an earlier try of ``owner`` (on any host), or a
    process of this host that is gone."""
    if not mark:
        return False
    if owner and mark.endswith(f":{owner_mark(owner)}"):
        return True
    return on_this_host(mark) and not alive(mark)
