"""Var är studenten? (issue 32 §2): one person's records from every flow on one page, found by
personnummer (posted, never in the URL) or by a Ladok uid / NyA admission id; masked. On SQLite
and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import re

from fastapi.testclient import TestClient

from brygga import console
from brygga.store import ops
from brygga.store.models import (
    ArchivePackage,
    AterbudCase,
    Drift,
    NyaAdmission,
    NyaApplicant,
    NyaMerit,
    ScheduleObject,
    UnhandledAdmission,
)

PNR = "199001011239"
OTHER = "200102034567"
T0 = dt.datetime(2027, 8, 20, 12, 0, tzinfo=dt.UTC)


def _seed(store):
    with store.transaction() as s:
        s.add_all([
            NyaAdmission(admission_id="A-1", round="HT2027", sequence=1, personnummer=PNR, tillfalleskod="27611",
                         state="placed", student_uid="stud-1", utbildningstillfalle_uid="inst-1",
                         antagning_uid="ant-1", placed_at=T0, record={}),
            NyaAdmission(admission_id="A-2", round="HT2027", sequence=2, personnummer=PNR, tillfalleskod="27612",
                         state="unhandled", record={}),
            NyaAdmission(admission_id="B-1", round="HT2027", sequence=3, personnummer=OTHER, tillfalleskod="27611",
                         state="placed", student_uid="stud-2", record={}),
            UnhandledAdmission(nya_admission_id="A-2", round="HT2027", personnummer=PNR, hinder="tillfalle.installt",
                               reason="Tillfället är inställt", admission={}),
            AterbudCase(nya_aterbud_id="NA-1", nya_admission_id="A-1", round="HT2027", personnummer=PNR, utbildningstillfalle_uid="inst-1",
                        cause="registered", suggested_action="early_avbrott", status="open"),
            NyaMerit(ref="ladok:resultat:r-1", merit_id="ladok:resultat:r-1", personnummer=PNR, type="result",
                     version=2, state="present", held=True, source="feed"),
            NyaApplicant(round="HT2027", personnummer=PNR, sequence=5, snapshot="done", merits=3),
            ScheduleObject(target="timeedit", kind="student", ext_id="stud-1", content_hash="h", version=1,
                           status="active", updated_at=T0),
            ScheduleObject(target="timeedit", kind="membership", ext_id="inst-1:stud-1", content_hash="h", version=3,
                           status="deleted", updated_at=T0),
            ScheduleObject(target="timeedit", kind="membership", ext_id="inst-1:stud-2", content_hash="h", version=1,
                           status="active", updated_at=T0),
            ArchivePackage(package_id="uuid:pkg-1", subject_kind="kurstillfalle", subject_uid="inst-1",
                           content_sha256="0" * 64, status="accepted"),
            Drift(run_id=1, round="HT2027", kind="aterbud.only_in_nya", subject="A-1", personnummer=PNR, detail={},
                  action="report_aterbud", status="open"),
        ])
        ops.audit(s, "anna.operator", "admission.retry", "nya_admission", "A-2", note="ompröva")
        ops.audit(s, "anna.operator", "admission.retry", "nya_admission", "B-1", note="another person")


def _client(store):
    return TestClient(console.create_app(store, lambda r: console.Principal("anna.operator", frozenset(), None),
                                         secret="s" * 32), follow_redirects=False)


def test_one_page_shows_a_persons_records_from_every_flow(store):
    _seed(store)
    c = _client(store)
    r = c.post("/trace", data={"csrf": "", "what": "19900101-1239"})
    assert r.status_code == 303 and "1239" not in r.headers["location"] and "person=" in r.headers["location"]
    html = c.get(r.headers["location"]).text
    assert "19900101-****" in html and not re.search(r"19900101-?1239", html)
    for section in ("t-admissions", "t-queue", "t-cases", "t-merits", "t-applications", "t-schedule", "t-archive",
                    "t-drift", "t-audit"):
        assert f'id="{section}"' in html, section
    assert "ant-1" in html and "inst-1:stud-1" in html and "uuid:pkg-1" in html and "ladok:resultat:r-1" in html
    assert "A-2" in html and "B-1" not in html and "inst-1:stud-2" not in html  # nothing of another person
    assert "ompröva" in html and "another person" not in html


def test_found_by_a_ladok_uid_or_a_nya_admission_id_and_a_bad_number_says_so(store):
    _seed(store)
    c = _client(store)
    for ident in ("stud-1", "ant-1", "A-2"):
        r = c.post("/trace", data={"csrf": "", "what": ident})
        html = c.get(r.headers["location"]).text
        assert 'id="person"' in html and "19900101-****" in html and 'id="t-merits"' in html, ident
    r = c.post("/trace", data={"csrf": "", "what": "unknown-uid"})
    assert 'id="not-found"' in c.get(r.headers["location"]).text
    r = c.post("/trace", data={"csrf": "", "what": "19900101-1230"})  # a wrong check digit
    assert "flash=" in r.headers["location"] and "1230" not in r.headers["location"]
    assert "inte ett giltigt personnummer" in c.get(r.headers["location"]).text
