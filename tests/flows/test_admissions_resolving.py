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


@pytest.mark.parametrize("kind", ["cut", "html", "doctype", "503"])
def test_an_unusable_register_reply_leaves_its_batch_pending_and_the_next_run_places_it(store, world, kind):
    """The population register answers the batch of new students cut short, with an HTML page (200),
    with a DTD, or 503: none of the batch is queued (no `ovrigt`), no one is established, the rest of
    the run goes on; the next run looks them up again and establishes and places them."""
    import requests

    from brygga import views

    w = world
    requests.post(f"{w['folk'].base}/sim/fault", json={"kind": kind, "times": 1}, timeout=10).raise_for_status()
    n_students = len(w["L"].students)
    _, first = _run(store, w)
    assert first["established"] == 0 and first["retry"] == 3  # new, protected, unknown to the register
    assert len(w["L"].students) == n_students
    assert views.count_unhandled(store, status="open").get("ovrigt", 0) == 0
    assert "personnummer.okant" not in views.count_unhandled(store, status="open")
    assert admissions.summary(store, ROUND)["pending"] == 3
    _, second = _run(store, w)
    assert second["established"] == 2 and second["placed"] == 2 and second.get("retry", 0) == 0
    assert "pending" not in admissions.summary(store, ROUND)
    assert views.count_unhandled(store, status="open")["personnummer.okant"] == 1
    for key in ("new", "protected"):
        (a,) = _admission_of(w, key)
        assert _ladok_admission(w, a.admission_id) is not None


def test_an_interimspersonnummer_is_established_from_nyas_name_placed_and_never_logged(store, world, caplog,
                                                                                      monkeypatch):
    """An applicant without a Swedish number (interimspersonnummer 19880527-T281 from antagning.se,
    fee-liable): the register is not asked, the student is established in Ladok with NyA's name and
    no address, the admission placed; no log line carries the number in any form."""
    import logging

    from simulators.nya.state import Applicant

    w = world
    interim = "19880527T281"
    offer = next(o for o in w["N"].rounds[ROUND].offers.values() if o.utbildningskod == w["t"]["t1"].utbildning.kod)
    w["N"].add_applicants(ROUND, [Applicant(interim, "Mei", "Chen", [offer.offer_id], 12.0, fee_liable=True,
                                            application_fee_paid=True, auto_accept=True)])
    w["N"].run_selection(ROUND)
    asked, real = [], w["folk"].lookup
    monkeypatch.setattr(w["folk"], "lookup", lambda numbers: asked.extend(numbers) or real(numbers))
    caplog.set_level(logging.DEBUG)
    _, placed = _run(store, w)
    assert placed["established"] == 3  # the two new students and her
    assert interim not in asked and asked  # the register was asked for the others only
    student = w["L"].by_pnr[interim]
    assert (student.fornamn, student.efternamn, student.adress) == ("Mei", "Chen", None)
    (a,) = [x for x in w["N"].rounds[ROUND].admissions.values() if x.personnummer == interim]
    antagning = _ladok_admission(w, a.admission_id)
    assert antagning is not None and antagning.student_uid == student.uid
    assert "brygga.flows.admissions" in caplog.text  # (what a failing task prints: tests/airflow)
    for form in ("19880527T281", "19880527-T281", "880527-T281", "880527T281", "T281"):
        assert form not in caplog.text
