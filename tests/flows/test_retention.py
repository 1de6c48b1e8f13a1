"""The retention purge on both stores: personal data of closed rounds, closed cases and old input
goes; counts, states and the audit trail (masked) stay; nothing open or recent is touched."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from brygga import personnummer as pnr_mod
from brygga.flows import admissions, retention
from brygga.store.models import (AterbudCase, CheckpointHistory, AuditLog, Drift, LadokContact, NyaAdmission, NyaApplicant, NyaMerit,
                                 OutboxMessage, Quarantine, UnhandledAdmission)

NOW = dt.datetime.now(dt.timezone.utc)
OLD = NOW - dt.timedelta(days=800)
RECENT = NOW - dt.timedelta(days=10)
PNR = [pnr_mod.with_check_digit(f"19850312{n:03d}") for n in range(100, 110)]


def _admission(aid, round_code, state, pnr, at):
    return NyaAdmission(admission_id=aid, round=round_code, sequence=int(aid.split("-")[-1]), personnummer=pnr,
                        utbildningskod="TDA100", tillfalleskod="11001", state=state, antagning_uid=f"uid-{aid}",
                        record={"personnummer": pnr, "first_name": "Ada", "last_name": "Lovelace"},
                        last_error=f"Ladok: {pnr} refused", created_at=at, updated_at=at)


@pytest.fixture
def seeded(store):
    with store.transaction() as s:
        s.add_all([
            _admission("VT2025-1", "VT2025", "placed", PNR[0], OLD),  # closed round
            _admission("VT2025-2", "VT2025", "declined", PNR[1], OLD),
            _admission("VT2025-3", "VT2025", "handled", PNR[2], OLD),
            _admission("HT2025-1", "HT2025", "placed", PNR[3], OLD),  # old, but one still pending
            _admission("HT2025-2", "HT2025", "pending", PNR[4], OLD),
            _admission("HT2027-1", "HT2027", "placed", PNR[5], RECENT),  # recent
            UnhandledAdmission(nya_admission_id="VT2025-3", round="VT2025", personnummer=PNR[2], hinder="ovrigt",
                               reason=f"Student {PNR[2]} saknas", admission={"personnummer": PNR[2]},
                               status="manual", created_at=OLD, updated_at=OLD),
            AuditLog(at=OLD, actor="brygga-admissions", action="admission.unhandled", object_type="nya_admission",
                     object_id="VT2025-3", detail={"reason": f"Student {PNR[2]} saknas", "hinder": "ovrigt"}),
            AuditLog(at=OLD, actor="brygga-admissions", action="admission.unhandled", object_type="nya_admission",
                     object_id="HT2025-2", detail={"reason": f"Student {PNR[4]} saknas"}),
            # the merit sync's applicants and ledger, and the reconciliation's drift: old and recent
            NyaApplicant(round="VT2025", personnummer=PNR[0], sequence=1, snapshot="done", merits=1, attempts=1,
                         created_at=OLD),
            NyaApplicant(round="HT2027", personnummer=PNR[5], sequence=2, snapshot="done", merits=1, attempts=1,
                         created_at=RECENT),
            NyaMerit(ref="ladok:resultat:old", merit_id="ladok:resultat:old", personnummer=PNR[0], type="resultat",
                     version=1, state="present", held=True, source="feed", created_at=OLD, updated_at=OLD),
            NyaMerit(ref="ladok:resultat:new", merit_id="ladok:resultat:new", personnummer=PNR[5], type="resultat",
                     version=1, state="present", held=True, source="feed", created_at=RECENT, updated_at=RECENT),
            CheckpointHistory(name="nya-admissions:VT2025", position=3, at=OLD),  # where a stream stood, long ago
            CheckpointHistory(name="nya-admissions:HT2027", position=9, at=RECENT),
            Drift(run_id=1, round="VT2025", kind="admission.missing_in_ladok", subject="VT2025-1", personnummer=PNR[0],
                  detail={}, action="place_again", status="repaired", found_at=OLD, last_seen_at=OLD, resolved_at=OLD),
            Drift(run_id=1, round="VT2025", kind="admission.missing_in_ladok", subject="VT2025-2", personnummer=PNR[1],
                  detail={}, action="place_again", status="open", found_at=OLD, last_seen_at=OLD),
            Drift(run_id=2, round="HT2027", kind="villkor.differ", subject="HT2027-1", personnummer=PNR[5],
                  detail={}, action="sync_villkor", status="gone", found_at=RECENT, last_seen_at=RECENT,
                  resolved_at=RECENT),
            AterbudCase(nya_aterbud_id="A-1", round="VT2025", personnummer=PNR[6], cause="registered",
                        suggested_action="avbrott", status="closed", closed_at=OLD, note=f"ringde {PNR[6]}"),
            AterbudCase(nya_aterbud_id="A-2", round="VT2025", personnummer=PNR[7], cause="registered",
                        suggested_action="avbrott", status="open", created_at=OLD),
            AterbudCase(nya_aterbud_id="A-3", round="HT2027", personnummer=PNR[8], cause="registered",
                        suggested_action="avbrott", status="closed", closed_at=RECENT),
            Quarantine(source="nya", message_id=f"adm-{PNR[0]}", kind="admission", reason=f"bad {PNR[0]}",
                       payload=f"<PersonalIdentityNumber>{PNR[0]}</PersonalIdentityNumber>", created_at=OLD),
            Quarantine(source="nya", message_id="adm-2", kind="admission", reason="bad", payload="<x/>",
                       created_at=RECENT),
            OutboxMessage(destination="nya", kind="merit", idempotency_key="m-1", payload={"pnr": PNR[9]},
                          status="sent", sent_at=OLD, created_at=OLD, response="<ok/>"),
            OutboxMessage(destination="nya", kind="merit", idempotency_key="m-2", payload={"pnr": PNR[9]},
                          status="dead", created_at=OLD),
            OutboxMessage(destination="nya", kind="merit", idempotency_key="m-3", payload={"pnr": PNR[9]},
                          status="sent", sent_at=RECENT, created_at=RECENT),
            LadokContact(student_uid="s-old", email="old@student.example.se", fetched_at=OLD),
            LadokContact(student_uid="s-new", email="new@student.example.se", fetched_at=RECENT),
        ])
        case_id = s.scalars(select(AterbudCase.id).where(AterbudCase.nya_aterbud_id == "A-1")).one()
        old_q = s.scalars(select(Quarantine.id).where(Quarantine.message_id == f"adm-{PNR[0]}")).one()
        s.add(AuditLog(at=OLD, actor="handläggare", action="quarantine.release", object_type="quarantine",
                       object_id=str(old_q), detail={"message_id": f"adm-{PNR[0]}", "note": "rättad i NyA"}))
        s.add(AuditLog(at=OLD, actor="handläggare", action="aterbud_case.close", object_type="aterbud_case",
                       object_id=str(case_id), detail={"note": f"ringde {PNR[6]}"}))
    return store


def _snapshot(store):
    with store.transaction() as s:
        return {
            "admissions": {a.admission_id: (a.personnummer, a.record, a.last_error, a.state, a.purged_at is not None)
                           for a in s.scalars(select(NyaAdmission))},
            "queue": {u.nya_admission_id: (u.personnummer, u.reason, u.admission) for u in s.scalars(select(UnhandledAdmission))},
            "audit": {(a.action, a.object_id): a.detail for a in s.scalars(select(AuditLog))},
            "cases": {c.nya_aterbud_id: (c.personnummer, c.note) for c in s.scalars(select(AterbudCase))},
            "quarantine": {q.id: (q.message_id, q.reason, q.payload) for q in s.scalars(select(Quarantine))},
            "outbox": {o.idempotency_key: o.payload for o in s.scalars(select(OutboxMessage))},
        }


def test_a_dry_run_counts_and_changes_nothing(seeded):
    before = _snapshot(seeded)
    out = retention.purge(seeded, now=NOW, dry_run=True)
    assert out == {"dry_run": True, "rounds": ["VT2025"], "admissions": 3, "queue": 1, "audit": 3,
                   "aterbud_cases": 1, "quarantine": 1, "outbox": 1, "contacts": 1,
                   "applicants": 1, "merit_ledger": 1, "drift": 1, "checkpoint_history": 1}
    assert _snapshot(seeded) == before


def test_the_purge_removes_personal_data_past_retention_and_keeps_counts_and_trail(seeded):
    from brygga.views import statistics

    summary_before = {r: admissions.summary(seeded, r) for r in ("VT2025", "HT2025", "HT2027")}
    handling_before = statistics.handling_times(seeded).to_dict()
    before = _snapshot(seeded)
    out = retention.purge(seeded, now=NOW)
    assert out == {"dry_run": False, "rounds": ["VT2025"], "admissions": 3, "queue": 1, "audit": 3,
                   "aterbud_cases": 1, "quarantine": 1, "outbox": 1, "contacts": 1,
                   "applicants": 1, "merit_ledger": 1, "drift": 1, "checkpoint_history": 1}
    after = _snapshot(seeded)

    for aid in ("VT2025-1", "VT2025-2", "VT2025-3"):
        assert after["admissions"][aid][:3] == (None, {}, None) and after["admissions"][aid][4]
        assert after["admissions"][aid][3] == before["admissions"][aid][3]  # the state (the count) stays
    for aid in ("HT2025-1", "HT2025-2", "HT2027-1"):  # a round with one pending, a recent round
        assert after["admissions"][aid] == before["admissions"][aid]
    assert {r: admissions.summary(seeded, r) for r in summary_before} == summary_before
    assert statistics.handling_times(seeded).to_dict() == handling_before  # the purge moves no times

    assert after["queue"]["VT2025-3"] == (None, f"Student {pnr_mod.mask(PNR[2])} saknas", {})
    assert PNR[2] not in str(after["audit"][("admission.unhandled", "VT2025-3")])
    assert after["audit"][("admission.unhandled", "VT2025-3")]["hinder"] == "ovrigt"
    assert after["audit"][("admission.unhandled", "HT2025-2")] == before["audit"][("admission.unhandled", "HT2025-2")]
    (closed_note,) = [d for (action, _), d in after["audit"].items() if action == "aterbud_case.close"]
    assert closed_note == {"note": None}  # an operator's note may name people: dropped, not masked

    assert after["cases"] == {"A-1": (None, None), "A-2": before["cases"]["A-2"], "A-3": before["cases"]["A-3"]}
    old_q = min(after["quarantine"])
    assert after["quarantine"][old_q][2] is None and PNR[0] not in str(after["quarantine"][old_q])
    assert after["audit"][("quarantine.release", str(old_q))] == {"message_id": None, "note": None}
    assert after["quarantine"][max(after["quarantine"])] == before["quarantine"][max(before["quarantine"])]
    assert after["outbox"] == {"m-1": {"purged": True}, "m-2": {"pnr": PNR[9]}, "m-3": {"pnr": PNR[9]}}
    with seeded.transaction() as s:  # an e-mail address cached for the schedule export, not asked for in 30 days
        assert set(s.scalars(select(LadokContact.student_uid))) == {"s-new"}
        assert set(s.scalars(select(NyaApplicant.personnummer))) == {PNR[5]}
        assert set(s.scalars(select(NyaMerit.ref))) == {"ladok:resultat:new"}
        assert {d.subject: d.status for d in s.scalars(select(Drift))} == {"VT2025-2": "open", "HT2027-1": "gone"}

    with seeded.transaction() as s:
        (purge,) = s.scalars(select(AuditLog).where(AuditLog.action == "retention.purge"))
        assert purge.actor == "brygga:retention" and purge.detail["rounds"] == ["VT2025"]
        assert purge.detail["admissions"] == 3 and purge.detail["retention_days"]["admissions"] == 548

    again = retention.purge(seeded, now=NOW)  # nothing twice, no audit row for nothing
    assert again == {"dry_run": False, "rounds": [], "admissions": 0, "queue": 0, "audit": 0,
                     "aterbud_cases": 0, "quarantine": 0, "outbox": 0, "contacts": 0, "applicants": 0,
                     "merit_ledger": 0, "drift": 0, "checkpoint_history": 0}
    with seeded.transaction() as s:
        assert len(s.scalars(select(AuditLog).where(AuditLog.action == "retention.purge")).all()) == 1


def test_retention_is_configured_per_kind(monkeypatch, seeded):
    monkeypatch.setenv("BRYGGA_RETENTION_OUTBOX_DAYS", "5")
    r = retention.Retention.from_env(quarantine=3650)
    assert (r.admissions, r.aterbud_cases, r.quarantine, r.outbox) == (548, 365, 3650, 5)
    out = retention.purge(seeded, r, now=NOW, dry_run=True)
    assert out["outbox"] == 2 and out["quarantine"] == 0
    with pytest.raises(ValueError, match="outbox"):
        retention.Retention(outbox=0)
