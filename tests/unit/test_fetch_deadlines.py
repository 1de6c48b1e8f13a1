"""A streamed reply's deadline fits the flow that reads it (issue: a trickling peer held a fetch of
the 30-second merit sync for 900 s); a Connection's own ``stream_timeout`` wins."""

from types import SimpleNamespace

import pytest

from brygga import dagkit
from brygga.config import STREAM_DEFAULT


@pytest.fixture
def connection(monkeypatch):
    extra: dict = {}
    monkeypatch.setattr(dagkit, "_connection", lambda conn_id: SimpleNamespace(
        conn_type="http", host="127.0.0.1", port=8701, schema=None, login=None, password=None, extra_dejson=extra))
    return extra


@pytest.mark.parametrize(("dag_id", "seconds"), [
    ("brygga_merit_sync", 60.0), ("brygga_aterbud", 60.0), ("brygga_admission_import", 240.0),
    ("brygga_schedule_export", 240.0), ("brygga_offer_export", STREAM_DEFAULT), (None, STREAM_DEFAULT)])
def test_each_flow_gets_a_deadline_within_its_interval(connection, dag_id, seconds):
    assert dagkit.peer("ladok", dag_id).stream_timeout == seconds


def test_the_connections_own_stream_timeout_wins(connection):
    connection["stream_timeout"] = 30
    assert dagkit.peer("ladok", "brygga_admission_import").stream_timeout == 30
    assert dagkit.peer("ladok").stream_timeout == 30


def test_a_trickling_reply_is_cut_at_the_flows_deadline():
    """The HTTP client ends a streamed reply at the deadline dagkit chose for the flow."""
    import dataclasses
    import time

    from adapters.http import PeerError, session
    from brygga.connections import PeerConfig
    from tests.adapters.test_http_client import _trickler

    srv, url, _ = _trickler(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n", 0.05)
    cfg = dataclasses.replace(PeerConfig("ladok", url, extra={"timeout": 0.5}), stream_default=1.0)
    r = session(cfg).get(url + "/uppfoljning/feed/recent", stream=True)
    t = time.monotonic()
    with pytest.raises(PeerError, match="timed out"):  # each byte in time, the whole not
        while r.raw.read(64):
            pass
    assert 0.5 < time.monotonic() - t < 1.6
    srv.close()
