"""The rate limit per peer (adapters.http.ratelimit): a token bucket shared through a file by every
process of a worker host, honoured by every request an adapter sends. On a fake clock: no test here
waits or measures time."""

from __future__ import annotations

import pytest

from adapters.http import ratelimit
from adapters.ladok import LadokAdapter
from brygga.config import PeerConfig


class FakeTime:
    """``time`` as the bucket sees it: sleeping moves the clock."""

    def __init__(self) -> None:
        self.now, self.slept = 1000.0, []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(round(seconds, 6))
        self.now += seconds


@pytest.fixture
def clock(monkeypatch, tmp_path):
    fake = FakeTime()
    monkeypatch.setattr(ratelimit, "time", fake)
    monkeypatch.setenv("BRYGGA_RATE_DIR", str(tmp_path))
    monkeypatch.setattr(ratelimit, "_BUCKETS", {})
    return fake


def test_a_burst_goes_at_once_then_one_request_per_interval(clock):
    b = ratelimit.TokenBucket("ladok:https://api.ladok.se", rate=1.0, burst=3)
    waits = [b.take() for _ in range(5)]
    assert waits == [0.0, 0.0, 0.0, 1.0, 1.0]
    clock.now += 10  # idle: the bucket fills to its burst, no more
    assert [b.take() for _ in range(4)] == [0.0, 0.0, 0.0, 1.0]


def test_two_processes_share_one_bucket_through_its_file(clock):
    """Two buckets of the same key (as two worker processes have: their own locks and file
    handles) draw from one state: what one took, the other waits for."""
    a = ratelimit.TokenBucket("ladok:https://api.ladok.se", rate=2.0, burst=2)
    b = ratelimit.TokenBucket("ladok:https://api.ladok.se", rate=2.0, burst=2)
    other = ratelimit.TokenBucket("nya:https://nya.example", rate=2.0, burst=2)
    assert a.path == b.path != other.path
    assert [a.take(), a.take()] == [0.0, 0.0]
    assert b.take() == 0.5 and other.take() == 0.0


def test_without_a_shared_file_the_process_keeps_its_own_bucket(clock, monkeypatch, tmp_path):
    blocked = tmp_path / "not-a-dir"
    blocked.write_text("a file where the directory should be")
    monkeypatch.setenv("BRYGGA_RATE_DIR", str(blocked))
    b = ratelimit.TokenBucket("ladok:x", rate=1.0, burst=1)
    assert not b._shared
    assert [b.take(), b.take()] == [0.0, 1.0]


def test_every_request_of_an_adapter_honours_its_connections_limit(clock, peer):
    url, script = peer
    script.then(200, b'<ki:Anvandare xmlns:ki="http://schemas.ladok.se/kataloginformation" '
                     b'xmlns:base="http://schemas.ladok.se"><base:Uid>u</base:Uid>'
                     b'<ki:Anvandarnamn>brygga</ki:Anvandarnamn></ki:Anvandare>')
    limited = LadokAdapter(PeerConfig("ladok", url, extra={"rate_per_second": 4, "rate_burst": 2}))
    for _ in range(4):
        limited.user(rights=False)
    assert len(script.requests) == 4 and clock.slept == [0.25, 0.25]
    free = LadokAdapter(PeerConfig("ladok", url))  # no limit configured
    clock.slept.clear()
    for _ in range(3):
        free.user(rights=False)
    assert clock.slept == []


def test_a_limit_needs_a_positive_rate_and_burst():
    with pytest.raises(ValueError):
        ratelimit.TokenBucket("x", rate=0, burst=1)
    with pytest.raises(ValueError):
        ratelimit.TokenBucket("x", rate=1, burst=0)
    assert ratelimit.bucket("x", None, None) is None
