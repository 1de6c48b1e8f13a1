"""The NyA↔Ladok reconciliation (brygga.flows.reconciliation) against the three simulators over
HTTP, on both stores: each kind of drift injected once is found once, with no false positive; a dry
run records nothing; a second run does not duplicate; each console action repairs its drift and
the next run finds nothing."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from brygga import console
from brygga.flows import aterbud, merits, reconciliation
from brygga.flows.admissions import review  # noqa: F401 - (the console's action)
from brygga.records import Merit
from brygga.states import DriftKind
from brygga.store.models import AterbudCase, Drift, NyaAdmission, NyaApplicant, NyaMerit, utcnow
from tests.flows.admissions_world import ROUND, _admission_of, _ladok_admission, _run, world  # noqa: F401

ORSAK = "studiedeltagande.domain.aterbudsorsak.meddelat.av.studenten"


def _client(store, w):
    peers = {"ladok": w["ladok"].peer, "folkbokforing": w["folk"].peer, "nya": w["nya"].peer}
    app = console.create_app(store, lambda request: console.Principal("olle.operator", frozenset(console.AREAS)),
                             secret="s", airflow=console.Airflow(peer=peers.__getitem__))
    return TestClient(app, follow_redirects=False)


def _merit(pnr: str, ref: str, grade: str) -> Merit:
    return Merit(ref, pnr, "resultat", "TDA100", "2027-01-15", tillfalleskod="11001", grade=grade, source_reference=ref)


def _inject(store, w) -> dict[str, str]:
    """One drift of each kind; the subject each should be found under."""
    L, N = w["L"], w["N"]
    (a_protected,) = _admission_of(w, "protected")
    (a_c,) = _admission_of(w, "c")
    (a_new,) = [a for a in _admission_of(w, "new") if a.admission_id in L.by_anmalningsnummer]
    a_f = _admission_of(w, "f")[0]
    m_course = next(a for a in _admission_of(w, "m") if a.offer_id == w["t"]["t6"].uid)
    # Ladok lost an admission; staff entered an återbud only in Ladok; NyA's applicant gave one
    # only in NyA; staff lifted NyA's villkor by hand in Ladok; Brygga placed one in another package
    L.ta_bort_forvantat_deltagande(_ladok_admission(w, a_protected.admission_id).uid)
    L.aterbud(_ladok_admission(w, a_c.admission_id).uid, dt.date(2027, 8, 20), ORSAK, None)
    N.register_aterbud(ROUND, admission_id=m_course.admission_id, date=dt.date(2027, 8, 21))
    L.lyft_villkor(_ladok_admission(w, a_new.admission_id).uid, a_new.conditions[0].code, manuellt=True)
    with store.transaction() as s:
        s.get(NyaAdmission, a_f.admission_id).package_uid = w["t"]["pt1"].uid
    # merits: NyA lost one it acknowledged, holds another in an older grade, holds one Ladok took back
    pnr = w["p"]["new"].personnummer
    held = [_merit(pnr, "ladok:resultat:r2", "B"), _merit(pnr, "ladok:resultat:r3", "C"),
            _merit(pnr, "ladok:resultat:r4", "A")]
    assert {o for o, _ in w["nya"].submit_merits(held, "seed-merits").values()} == {"accepted"}
    now = utcnow()
    with store.transaction() as s:
        s.add(NyaApplicant(round=ROUND, personnummer=pnr, sequence=1, snapshot="done", merits=4, attempts=1,
                           created_at=now))
        for ref, grade, state in (("r1", "A", "present"), ("r2", "A", "present"), ("r3", "C", "withdrawn"),
                                  ("r4", "A", "present")):
            m = _merit(pnr, f"ladok:resultat:{ref}", grade)
            s.add(NyaMerit(ref=m.merit_id, merit_id=m.merit_id, personnummer=pnr, type=m.type,
                           content_hash=m.content_hash() if state == "present" else None,
                           content={f: getattr(m, f) for f in ("merit_id", "personnummer", "type", "utbildningskod",
                                                               "date", "tillfalleskod", "modul", "credits", "grade",
                                                               "source_reference")},
                           version=1, state=state, held=True, source="feed", created_at=now, updated_at=now))
    return {
        DriftKind.ADMISSION_MISSING_IN_LADOK: a_protected.admission_id,
        DriftKind.ATERBUD_ONLY_IN_LADOK: a_c.admission_id,
        DriftKind.ATERBUD_ONLY_IN_NYA: m_course.admission_id,
        DriftKind.VILLKOR_DIFFER: a_new.admission_id,
        DriftKind.ADMISSION_WRONG_PACKAGE: a_f.admission_id,
        DriftKind.MERIT_MISSING_IN_NYA: "ladok:resultat:r1",
        DriftKind.MERIT_OTHER_VERSION: "ladok:resultat:r2",
        DriftKind.MERIT_WITHDRAWN_IN_LADOK: "ladok:resultat:r3",
    }


def _open(store) -> dict[str, str]:
    with store.transaction() as s:
        return {d.kind: d.subject for d in s.scalars(select(Drift).where(Drift.status == "open"))}


def test_each_kind_of_drift_is_found_once_and_each_action_repairs_it(store, world):
    w = world
    _run(store, w)
    clean = reconciliation.reconcile(store, w["nya"], w["ladok"], actor="test")
    assert clean["found"] == {} and clean["compared"]["admissions"] >= 6  # nothing differs after an import
    injected = _inject(store, w)

    dry = reconciliation.reconcile(store, w["nya"], w["ladok"], dry_run=True)
    assert {x["kind"]: x["subject"] for x in dry["would"]} == injected and "run_id" not in dry
    assert all(x["action_text"] for x in dry["would"]) and _open(store) == {}  # nothing recorded

    found = reconciliation.reconcile(store, w["nya"], w["ladok"], actor="test")
    assert found["found"] == dict.fromkeys(injected, 1)  # every kind once: no false positive
    assert _open(store) == injected
    again = reconciliation.reconcile(store, w["nya"], w["ladok"], actor="test")
    assert again["new"] == 0 and again["gone"] == 0 and _open(store) == injected  # not found twice

    # each repaired from the console, with the flows' own functions
    c = _client(store, w)
    page = c.get("/reconciliation").text
    csrf = re.search(r'name="csrf" value="([0-9a-f]*)"', page).group(1)
    assert page.count('class="repair"') == len(injected)
    with store.transaction() as s:
        ids = {d.kind: d.id for d in s.scalars(select(Drift).where(Drift.status == "open"))}
    for kind, drift_id in ids.items():
        r = c.post(f"/reconciliation/{drift_id}/repair", data={"csrf": csrf})
        assert r.status_code == 303, (kind, r.text)
        assert "Det gick inte" not in c.get(r.headers["location"]).text, kind
    assert _open(store) == {}
    with store.transaction() as s:
        case = s.scalars(select(AterbudCase).where(AterbudCase.cause == "not_in_ladok")).one()
    # what the actions queued is carried out by the flows as they run anyway
    from brygga.flows.aterbud import cases

    cases.apply_case(store, w["ladok"], case.id, actor="olle.operator")
    _run(store, w)  # places the lost admission again
    aterbud.to_nya.send_pending(store, w["nya"])  # Ladok's återbud to NyA
    merits.send_pending(store, w["nya"], base_seconds=0)  # the merits sent again, the one withdrawn
    after = reconciliation.reconcile(store, w["nya"], w["ladok"], actor="test")
    assert after["found"] == {}, after["found"]
    held = {m.merit_id: m.grade for m in w["nya"].applicant_merits(w["p"]["new"].personnummer)}
    assert held == {"ladok:resultat:r1": "A", "ladok:resultat:r2": "A", "ladok:resultat:r4": "A"}


def test_a_dismissed_drift_stays_dismissed_and_one_a_later_run_no_longer_finds_is_gone(store, world):
    w = world
    _run(store, w)
    (a_c,) = _admission_of(w, "c")
    w["L"].aterbud(_ladok_admission(w, a_c.admission_id).uid, dt.date(2027, 8, 20), ORSAK, None)
    (a_p,) = _admission_of(w, "protected")
    w["L"].ta_bort_forvantat_deltagande(_ladok_admission(w, a_p.admission_id).uid)
    reconciliation.reconcile(store, w["nya"], w["ladok"], actor="test", merits=False)
    c = _client(store, w)
    csrf = re.search(r'name="csrf" value="([0-9a-f]*)"', c.get("/reconciliation").text).group(1)
    with store.transaction() as s:
        ids = {d.kind: d.id for d in s.scalars(select(Drift))}
    r = c.post(f"/reconciliation/{ids[DriftKind.ATERBUD_ONLY_IN_LADOK]}/dismiss", data={"csrf": csrf, "note": ""})
    assert "skriv varför" in c.get(r.headers["location"]).text
    c.post(f"/reconciliation/{ids[DriftKind.ATERBUD_ONLY_IN_LADOK]}/dismiss",
           data={"csrf": csrf, "note": "NyA rättas för hand"})
    # the lost admission is placed again by hand (as Ladok's staff would): the next run finds it gone
    with store.transaction() as s:
        s.get(NyaAdmission, a_p.admission_id).state = "pending"
    _run(store, w)
    reconciliation.reconcile(store, w["nya"], w["ladok"], actor="test", merits=False)
    with store.transaction() as s:
        status = {d.kind: d.status for d in s.scalars(select(Drift))}
    assert status == {DriftKind.ATERBUD_ONLY_IN_LADOK: "dismissed", DriftKind.ADMISSION_MISSING_IN_LADOK: "gone"}
    csv = c.get("/reconciliation.csv?status=all").text
    assert "Återbud i Ladok men inte i NyA" in csv and w["p"]["c"].personnummer not in csv  # masked


@pytest.mark.parametrize("kind", ["missing", "extra"])
def test_the_reconciliation_reads_only_and_changes_nothing_in_the_peers(store, world, kind):
    w = world
    _run(store, w)
    (a_c,) = _admission_of(w, "c")
    if kind == "missing":
        w["L"].ta_bort_forvantat_deltagande(_ladok_admission(w, a_c.admission_id).uid)
    else:
        w["L"].aterbud(_ladok_admission(w, a_c.admission_id).uid, dt.date(2027, 8, 20), ORSAK, None)
    before = (len(w["L"].antagningar), w["L"].feed.count, w["N"].stats())
    reconciliation.reconcile(store, w["nya"], w["ladok"], actor="test")
    assert (len(w["L"].antagningar), w["L"].feed.count,
            w["N"].stats()) == before
