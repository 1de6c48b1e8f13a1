"""Admission import NyA → Ladok, finding instances and students (``resolving.py``): one student search
per batch. Against the simulators over HTTP, on both stores (the world:
``tests/flows/admissions_world.py``)."""

from __future__ import annotations

import pytest

from brygga.flows import admissions
from tests.flows.admissions_world import (
    ROUND,
    _admission_of,
    _ladok_admission,
    _run,
    world,  # noqa: F401 - the fixture
)


def _ladok_requests(w, monkeypatch):
    """The (method, path) of every request the Ladok adapter sends from now on."""
    sent, real = [], w["ladok"]._request

    def spy(method, path, service, **kw):
        sent.append((method, path))
        return real(method, path, service, **kw)

    monkeypatch.setattr(w["ladok"], "_request", spy)
    return sent


def _student_requests(sent):
    search = sum(1 for m, p in sent if p == "/studentinformation/student/filtrera")
    lookups = sum(1 for m, p in sent if p.startswith("/studentinformation/student/personnummer/"))
    established = sum(1 for m, p in sent if (m, p) == ("POST", "/studentinformation/student"))
    return search, lookups, established


@pytest.mark.parametrize("batch, searches", [(admissions.LOOKUP_BATCH, 1), (4, 3)])
def test_students_are_found_with_one_search_per_batch(store, world, monkeypatch, batch, searches):
    """Nine students reach the student step (six in Ladok, two new, one unknown to the register):
    one student search per batch of numbers instead of nine lookups, with the same outcome."""
    w = world
    monkeypatch.setattr(admissions.resolving, "LOOKUP_BATCH", batch)
    sent = _ladok_requests(w, monkeypatch)
    _, placed = _run(store, w)
    assert placed["placed"] == 6 and placed["established"] == 2 and placed["unhandled"] == 6
    assert _student_requests(sent) == (searches, 0, 2)


def test_a_search_that_finds_no_one_still_places_existing_students_once(store, world, monkeypatch):
    """A Ladok whose search answers nothing (e.g. it ignores the repeated personnummer): the
    existing students are met by establishment's personnummer.finns and looked up one by one,
    never established twice, and only the two new students count as established."""
    w = world
    L, p = w["L"], w["p"]
    n_students = len(L.students)
    monkeypatch.setattr(w["ladok"], "students_by_personnummer", lambda pnrs, **kw: {})
    sent = _ladok_requests(w, monkeypatch)
    _, placed = _run(store, w)
    assert placed["placed"] == 6 and placed["established"] == 2
    assert len(L.students) == n_students + 2
    assert _student_requests(sent) == (0, 6, 8)  # 6 existing: 409 personnummer.finns, then the lookup
    for key in ("c", "f", "m"):
        for a in _admission_of(w, key):
            assert _ladok_admission(w, a.admission_id).student_uid == L.by_pnr[p[key].personnummer].uid


def test_a_failed_search_leaves_its_admissions_pending(store, world, monkeypatch):
    """Ladok fails the student search (5xx): every admission of the batch is retried later, none
    is queued and no one is established; the catalogue hinder are still queued."""
    from adapters.http import PeerError

    w = world

    def fail(pnrs, **kw):
        raise PeerError("ladok", "GET /studentinformation/student/filtrera: HTTP 503", status=503, transient=True)

    monkeypatch.setattr(w["ladok"], "students_by_personnummer", fail)
    n_students = len(w["L"].students)
    _, placed = _run(store, w)
    assert placed == {"placed": 0, "established": 0, "unhandled": 2, "retry": 10,
                      "hinder:utbildningstillfalle.saknas": 1, "hinder:utbildningstillfalle.installt": 1}
    assert len(w["L"].students) == n_students
    assert admissions.summary(store, ROUND) == {"pending": 10, "unhandled": 2, "invalid": 1}
