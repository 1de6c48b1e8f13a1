"""Admission import NyA → Ladok, claims on pending rows (``claims.py``): two placers, dead and live
claims. Against the simulators over HTTP, on both stores (the world:
``tests/flows/admissions_world.py``)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select

from brygga.flows import admissions
from brygga.store.models import (
    AuditLog,
    NyaAdmission,
)
from tests.flows.admissions_world import (
    ROUND,
    world,  # noqa: F401 - the fixture
)


def _count_posts(monkeypatch, ladok):
    """Every placement POST Ladok receives, by Anmalningsnummer."""
    import collections
    import threading

    posts: collections.Counter = collections.Counter()
    lock = threading.Lock()
    real = ladok.place

    def place(p):
        with lock:
            posts[p.anmalningsnummer] += 1
        return real(p)

    monkeypatch.setattr(ladok, "place", place)
    return posts


def test_two_placers_over_the_same_rows_send_each_placement_once(store, world, monkeypatch):
    """Placer A claims its first chunk; while it works on it, placer B runs over the same round.
    B takes only what A has not claimed, A finds B's done: every admission is POSTed to Ladok once
    and audited once."""
    w = world
    admissions.fetch(store, w["nya"], ROUND)
    posts = _count_posts(monkeypatch, w["ladok"])
    real, inner = admissions.placing.resolve_all, {}

    def resolve_then_let_b_run(items, *a, **k):
        real(items, *a, **k)
        if not inner:
            inner["a_chunk"] = len(items)
            inner["b"] = admissions.place(store, w["ladok"], w["folk"], ROUND, workers=2)

    monkeypatch.setattr(admissions.placing, "resolve_all", resolve_then_let_b_run)
    a = admissions.place(store, w["ladok"], w["folk"], ROUND, chunk=3, workers=2)
    b = inner["b"]
    assert a["placed"] > 0 and b["placed"] > 0
    assert a["placed"] + b["placed"] == admissions.summary(store, ROUND)["placed"] == 6
    assert posts and max(posts.values()) == 1, posts
    with store.transaction() as s:
        audited = [i for r in s.scalars(select(AuditLog).where(AuditLog.action == "admission.place"))
                   for i in (r.detail or {}).get("admissions", [])]
        assert len(audited) == len(set(audited)) == 6
        assert s.scalar(select(func.count()).select_from(NyaAdmission)
                        .where(NyaAdmission.claimed_by.is_not(None))) == 0


def _claim_all_pending(store, by, until):
    t = NyaAdmission.__table__
    with store.transaction() as s:
        return s.execute(t.update().where(t.c.state == "pending").values(claimed_by=by, claimed_until=until)).rowcount


def test_claims_of_a_dead_placer_on_this_host_are_given_back(store, world):
    """A placer killed mid-chunk (kill -9) leaves its claims: the next run on the same host sees
    the process is gone and gives them back at once, not after the lease."""
    import socket

    w = world
    admissions.fetch(store, w["nya"], ROUND)
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=4)
    assert _claim_all_pending(store, f"{socket.gethostname()}:999999999:dead", later) == 12
    assert admissions.place(store, w["ladok"], w["folk"], ROUND)["placed"] == 6


def test_a_live_claim_is_respected_until_its_lease_lapses(store, world, monkeypatch):
    w = world
    admissions.fetch(store, w["nya"], ROUND)
    posts = _count_posts(monkeypatch, w["ladok"])
    now = dt.datetime.now(dt.timezone.utc)
    _claim_all_pending(store, "another-host:4242:live", now + dt.timedelta(minutes=4))
    assert admissions.place(store, w["ladok"], w["folk"], ROUND) == {"placed": 0, "established": 0,
                                                                      "unhandled": 0, "retry": 0}
    assert not posts
    _claim_all_pending(store, "another-host:4242:live", now - dt.timedelta(seconds=1))
    assert admissions.place(store, w["ladok"], w["folk"], ROUND)["placed"] == 6
    assert max(posts.values()) == 1


def test_the_retry_of_a_task_takes_over_what_its_dead_try_claimed_on_another_host(store, world):
    """Celery, workers on two hosts: a try of place (shard task instance X) killed on worker2 leaves
    live claims there. The retry of X, on worker1, takes them over at once and places them; the
    claims of another task instance (Y, alive elsewhere) are left alone; the run can tell how many
    of its own claims are still unplaced."""
    from brygga.flows.admissions import claims

    w = world
    admissions.fetch(store, w["nya"], ROUND)
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=30)
    x = "brygga_admission_import/scheduled__2027-08-01/place/0"
    y = "brygga_admission_import/scheduled__2027-08-01/place/1"
    dead = f"worker2-host:4242:deadbeef0000:{claims.owner_mark(x)}"
    assert _claim_all_pending(store, dead, later) == 12
    assert claims.claimed_by(store, [x]) == 12 and claims.claimed_by(store, [y]) == 0
    # another task instance does not take them (they may be alive on worker2)
    assert admissions.place(store, w["ladok"], w["folk"], ROUND, owner=y)["placed"] == 0
    assert claims.claimed_by(store, [x]) == 12
    # X's retry does, on another host
    assert admissions.place(store, w["ladok"], w["folk"], ROUND, owner=x)["placed"] == 6
    assert claims.claimed_by(store, [x, y]) == 0
    with store.transaction() as s:
        assert s.scalar(select(func.count()).select_from(NyaAdmission).where(
            NyaAdmission.claimed_by.is_not(None))) == 0


def test_an_admissions_trace_follows_it_from_nyas_reply_to_ladoks_placement(store, world):
    """Each admission gets a W3C traceparent when it is read from NyA; its placement request
    carries the same trace id to Ladok (a span of its own), and the audit row names it."""
    from brygga import tracing
    from brygga.store.models import AuditLog

    w = world
    admissions.fetch(store, w["nya"], ROUND)
    with store.transaction() as s:
        stored = {a.admission_id: a.traceparent for a in s.scalars(select(NyaAdmission))}
    assert stored and all(tracing.valid(tp) for tp in stored.values())
    assert len({tracing.trace_id(tp) for tp in stored.values()}) == len(stored)  # one trace per admission
    admissions.place(store, w["ladok"], w["folk"], ROUND)
    received = w["L"].traceparents
    placed = [a for a, tp in stored.items() if a in received]
    assert placed
    for a in placed:
        (tp,) = received[a]
        assert tracing.trace_id(tp) == tracing.trace_id(stored[a]) and tp != stored[a]
    with store.transaction() as s:
        audit = s.scalars(select(AuditLog).where(AuditLog.action == "admission.place")).all()
    traces = {k: v for a in audit for k, v in (a.detail.get("traces") or {}).items()}
    assert {a: tracing.trace_id(stored[a]) for a in placed} == {a: traces[a] for a in placed}
