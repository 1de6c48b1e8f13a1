"""The simulators' fault plan (issue 33, ``simulators/faults.py``): each kind does what it says on
a real server — before the work (500/503/429), after it (hang, cut, reset, kill), or on what is
read (duplicate, reorder, stale) — and only on the requests it names."""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
import time

import pytest
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

from simulators._server import serve_in_thread
from simulators.faults import FaultMiddleware

FEED = b'<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><id>f</id><entry><id>1</id></entry><entry><id>2</id></entry></feed>'


@pytest.fixture
def server():
    done: list[str] = []
    version = {"n": 0}

    async def work(request):
        done.append(request.url.path)
        return Response(b"x" * 1000)

    async def feed(request):
        version["n"] += 1
        return Response(FEED.replace(b"<id>f</id>", f"<id>f{version['n']}</id>".encode()), media_type="application/atom+xml")

    app = Starlette(routes=[Route("/work", work, methods=["POST"]), Route("/feed", feed)])
    app.add_middleware(FaultMiddleware)
    with serve_in_thread(app) as s:
        yield s, done


def _call(s, method, path, body=None, timeout=5.0):
    c = http.client.HTTPConnection("127.0.0.1", s.port, timeout=timeout)
    try:
        c.request(method, path, body=body, headers={"Content-Type": "application/json"} if body else {})
        r = c.getresponse()
        return r.status, dict(r.getheaders()), r.read()
    finally:
        c.close()


def _plan(s, *faults, victim=None):
    status, _, body = _call(s, "POST", "/sim/faults", json.dumps({"faults": list(faults), "victim": victim}))
    assert status == 200
    return json.loads(body)


def test_before_the_work_the_peer_does_nothing_and_says_when_to_come_back(server):
    s, done = server
    _plan(s, {"kind": "503", "match": "^POST /work", "nth": 2}, {"kind": "429", "match": "^POST /work", "nth": 3})
    assert _call(s, "POST", "/work", b"{}")[0] == 200
    status, headers, _ = _call(s, "POST", "/work", b"{}")
    assert status == 503 and headers["retry-after"] == "1"
    assert _call(s, "POST", "/work", b"{}")[0] == 429
    assert _call(s, "POST", "/work", b"{}")[0] == 200
    assert len(done) == 2  # the refused two were never done
    view = json.loads(_call(s, "GET", "/sim/faults")[2])
    assert [i["kind"] for i in view["injected"]] == ["503", "429"]


def test_after_the_work_the_answer_is_lost_hung_cut_or_reset(server):
    s, done = server
    _plan(s, {"kind": "hang", "match": "/work", "nth": 1, "seconds": 1.0},
          {"kind": "cut", "match": "/work", "nth": 2}, {"kind": "reset", "match": "/work", "nth": 3})
    with pytest.raises(TimeoutError):
        _call(s, "POST", "/work", b"{}", timeout=0.3)
    with pytest.raises(http.client.IncompleteRead):
        _call(s, "POST", "/work", b"{}")
    with pytest.raises((http.client.RemoteDisconnected, ConnectionResetError)):
        _call(s, "POST", "/work", b"{}")
    time.sleep(1.0)
    assert len(done) == 3  # each was done: only the answer went missing


def test_kill_takes_the_client_down_after_the_peer_did_the_work(server):
    s, done = server
    victim = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        _plan(s, {"kind": "kill", "match": "/work"}, victim=victim.pid)
        assert _call(s, "POST", "/work", b"{}")[0] == 200
        assert victim.wait(5) == -9 and done == ["/work"]
    finally:
        victim.kill()


def test_what_is_read_comes_twice_reversed_or_late(server):
    s, _ = server
    _plan(s, {"kind": "duplicate", "match": "^GET /feed", "nth": 1}, {"kind": "reorder", "match": "^GET /feed", "nth": 2},
          {"kind": "stale", "match": "^GET /feed", "nth": 4})
    from lxml import etree

    def ids(body):
        root = etree.fromstring(body)
        return root.findtext("{http://www.w3.org/2005/Atom}id"), [e.findtext("{http://www.w3.org/2005/Atom}id")
                                                                   for e in root.iter("{http://www.w3.org/2005/Atom}entry")]

    assert ids(_call(s, "GET", "/feed")[2]) == ("f1", ["1", "1", "2"])
    assert ids(_call(s, "GET", "/feed")[2]) == ("f2", ["2", "1"])
    assert ids(_call(s, "GET", "/feed")[2]) == ("f3", ["1", "2"])
    assert ids(_call(s, "GET", "/feed")[2]) == ("f3", ["1", "2"])  # the page as it was the time before
    assert ids(_call(s, "GET", "/feed")[2]) == ("f5", ["1", "2"])


def test_a_plan_names_known_kinds_and_an_empty_one_clears_it(server):
    s, done = server
    status, _, body = _call(s, "POST", "/sim/faults", json.dumps({"faults": [{"kind": "flood", "match": "."}]}))
    assert status == 400 and b"unknown fault kind" in body
    _plan(s, {"kind": "500", "match": "/work", "times": 5})
    assert _call(s, "POST", "/work", b"{}")[0] == 500
    _plan(s)
    assert _call(s, "POST", "/work", b"{}")[0] == 200
