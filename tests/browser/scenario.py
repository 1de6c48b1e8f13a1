"""What the browser tests find in the store: made by Brygga's own flows against the simulators of
``tests.flows.admissions_world.make_world`` (real rules), not written by hand.

* the admission import (fetch + place): among others, student D's course admission lands in the
  queue — the course is in two programmes in D's study plan (hinder kunde.inte.placeras.i.plan,
  two candidate packages; ompröva in the first, TKDAT, places it); the admission with an invalid
  personnummer is quarantined (an open quarantine row, kind Admission) and queued;
* återbud: student C, placed on a course and registered in Ladok, gives an återbud in NyA ten days
  after study start: the återbud sync opens a case (registered, suggested action tidigt avbrott,
  which ``apply_case`` carries out);
* the offer export: a finished dry run of the round's ordinary offers (all new: nothing was
  published before);
* a merit message NyA never accepted: given up on after its attempts (a dead letter in the
  quarantine, which the console can retry);
* the audit log: what those flows record (återbud, the case, the dry run's start and finish);
* the reconciliation: Ladok loses the protected student's placed admission; a run finds it
  (admission.missing_in_ladok, action "Placera igen").

``seed`` returns the ids the tests act on (``SCENARIO_KEYS``); ``tests/browser/test_smoke.py``
checks on a second seeded store that the admission and the case really can be acted on.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import func, select

SCENARIO_KEYS = ("admission_id", "package_uid", "package_code", "case_id", "publication_id", "dry_run_id",
                 "antagning_c", "drift_id")


def seed(store: Any, world: dict[str, Any]) -> dict[str, Any]:
    """Run the flows over ``world`` (``make_world()``: the Ladok, NyA and population register
    simulators with their adapters ``ladok``, ``nya``, ``folk`` and states ``L``, ``N``) into the
    migrated, empty ``store``. Returns the scenario's ids:

    ``admission_id`` (an open unhandled admission, kunde.inte.placeras.i.plan) and ``package_uid``
    / ``package_code`` (one of its candidates, in which ompröva places it); ``case_id`` (an open
    återbudsärende, suggested action early_avbrott) and ``antagning_c`` (its tillfällesantagning in
    Ladok); ``publication_id`` (= ``dry_run_id``: a finished dry run of the offer export, all items
    new)."""
    from brygga.flows import aterbud, offers, reconciliation
    from brygga.store import ops
    from brygga.store.models import (
        AterbudCase,
        AuditLog,
        NyaAdmission,
        PublicationItem,
        Quarantine,
        UnhandledAdmission,
    )
    from tests.flows.admissions_world import ROUND, START, _admission_of, _run

    w = world
    _run(store, w)
    (a_d,) = _admission_of(w, "d")
    (a_c,) = _admission_of(w, "c")
    package = w["t"]["pt1"]
    with store.transaction() as s:
        queued = s.scalars(select(UnhandledAdmission).where(
            UnhandledAdmission.nya_admission_id == a_d.admission_id)).one()
        assert queued.status == "open" and queued.hinder == "kunde.inte.placeras.i.plan", (queued.status, queued.hinder)
        assert len(queued.candidates) == 2 and package.uid in {c["package_uid"] for c in queued.candidates}, \
            queued.candidates
        placed_c = s.get(NyaAdmission, a_c.admission_id)
        assert placed_c.state == "placed"
        antagning_c = placed_c.antagning_uid
        open_quarantine = s.scalar(select(func.count()).select_from(Quarantine).where(Quarantine.released_at.is_(None)))
        assert open_quarantine >= 1  # the invalid personnummer's admission
    w["L"].registrera(antagning_c, 1, START)
    outcome, *_, reason = w["N"].register_aterbud(ROUND, admission_id=a_c.admission_id,
                                                   date=START + dt.timedelta(days=10), origin="applicant")
    assert outcome == "registered", reason
    res = aterbud.nya_to_ladok(store, w["nya"], w["ladok"])
    assert res["case"] == 1, res
    with store.transaction() as s:
        case = s.scalars(select(AterbudCase)).one()
        case_id, action, status = case.id, case.suggested_action, case.status
    assert action == "early_avbrott" and status == "open", (action, status)

    pid = offers.start(store, round_code=ROUND, kind="ordinary", codes=[], dry_run=True, triggered_by="operator")
    offers.collect(store, w["ladok"], pid)
    offers.finish(store, pid)
    with store.transaction() as s:
        new = s.scalar(select(func.count()).select_from(PublicationItem).where(
            PublicationItem.publication_id == pid, PublicationItem.action == "new"))
        assert new >= 1, new

    with store.transaction() as s:
        ops.outbox_enqueue(s, [{"destination": "nya", "kind": "merit", "idempotency_key": "nya:merit:console-demo",
                                "correlation": "merits", "payload": {"huid": "console-demo"}}])
        (m,) = ops.outbox_due(s, "nya", kind="merit")
        while m.status != "dead":  # every attempt failed, as the merit sync's send would record them
            ops.outbox_mark_failed(s, m, "NyA answered HTTP 503 Service Unavailable")
        audited = s.scalar(select(func.count()).select_from(AuditLog))
        assert audited >= 3, audited
    (a_p,) = _admission_of(w, "protected")
    w["L"].ta_bort_forvantat_deltagande(w["L"].by_anmalningsnummer[a_p.admission_id].uid)
    found = reconciliation.reconcile(store, w["nya"], w["ladok"], actor="brygga:reconciliation")
    assert found["found"] == {"admission.missing_in_ladok": 1}, found["found"]
    from brygga.store.models import Drift

    with store.transaction() as s:
        drift_id = s.scalars(select(Drift.id)).one()
    return {"admission_id": a_d.admission_id, "package_uid": package.uid, "package_code": package.utbildning.kod,
            "case_id": case_id, "publication_id": pid, "dry_run_id": pid, "antagning_c": antagning_c,
            "drift_id": drift_id}
