"""A rate limit per peer: a token bucket (``rate`` requests a second, bursts of ``burst``) shared by
every thread and every process of one worker host, so the tasks a worker runs at once honour one
limit together (Airflow's pools bound how many run; this bounds how fast they ask).

The bucket's state (tokens, last refill) is 16 bytes in a file under ``BRYGGA_RATE_DIR`` (default
``/dev/shm/brygga-rate``, else the temp dir), updated under an exclusive ``fcntl`` lock; a wait is
taken outside the lock. A host where the file cannot be used falls back to a bucket of this
process alone (logged once). masv3971/go_ladok takes 1 request/s with bursts of 30 against the
real Ladok (``rate.NewLimiter(rate.Every(1*time.Second), 30)`` in ``ladok.go``); Brygga's default
is no limit, set per Connection (``rate_per_second``, ``rate_burst``).
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import struct
import tempfile
import threading
import time
from pathlib import Path

log = logging.getLogger("adapters.http.ratelimit")
_STATE = struct.Struct("<dd")  # tokens, monotonic time of the last refill (CLOCK_MONOTONIC: host-wide)


def _directory() -> Path:
    configured = os.environ.get("BRYGGA_RATE_DIR")
    if configured:
        return Path(configured)
    shm = Path("/dev/shm")
    return (shm if shm.is_dir() and os.access(shm, os.W_OK) else Path(tempfile.gettempdir())) / "brygga-rate"


class TokenBucket:
    """``take()`` blocks until a request may go (at most ``rate`` a second, ``burst`` at once)."""

    def __init__(self, key: str, rate: float, burst: int):
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.rate, self.burst = float(rate), int(burst)
        name = hashlib.sha256(key.encode()).hexdigest()[:24]
        self.path = _directory() / f"{name}.bucket"
        self._lock = threading.Lock()
        self._local: tuple[float, float] | None = None  # the fallback's state
        self._shared = True
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))
        except OSError as e:
            log.warning("rate limit for %s shared by this process only (%s)", key, e)
            self._shared = False

    def _refill(self, tokens: float, last: float, now: float) -> float:
        return min(float(self.burst), tokens + (now - last) * self.rate)

    def _reserve(self) -> float:
        """Take a token now, or reserve the next one; the seconds to wait before using it."""
        now = time.monotonic()
        if not self._shared:
            with self._lock:
                tokens, last = self._local or (float(self.burst), now)
                tokens = self._refill(tokens, last, now) - 1.0
                self._local = (tokens, now)
            return max(0.0, -tokens / self.rate)
        with self._lock, open(self.path, "r+b") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                raw = f.read(_STATE.size)
                tokens, last = _STATE.unpack(raw) if len(raw) == _STATE.size else (float(self.burst), now)
                if last > now:  # another boot's state (the clock restarted): start full
                    tokens, last = float(self.burst), now
                tokens = self._refill(tokens, last, now) - 1.0
                f.seek(0)
                f.write(_STATE.pack(tokens, now))
                f.truncate()
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)
        return max(0.0, -tokens / self.rate)

    def take(self) -> float:
        """Wait for a token; the seconds waited."""
        wait = self._reserve()
        if wait > 0:
            time.sleep(wait)
        return wait


_BUCKETS: dict[tuple[str, float, int], TokenBucket] = {}
_BUCKETS_LOCK = threading.Lock()


def bucket(key: str, rate: float | None, burst: int | None) -> TokenBucket | None:
    """The one bucket of this process for a peer (None: no limit configured)."""
    if not rate:
        return None
    k = (key, float(rate), int(burst or max(1, round(rate))))
    with _BUCKETS_LOCK:
        b = _BUCKETS.get(k)
        if b is None:
            b = _BUCKETS[k] = TokenBucket(k[0], k[1], k[2])
        return b
