"""What the browser tests find in the store: made by Brygga's own flows against the simulators of
``tests.flows.test_admissions.make_world`` (real rules), not written by hand.

* the admission import (fetch + place): among others, student D's course admission lands in the
  queue — the course is in two programmes in D's study plan (hinder kunde.inte.placeras.i.plan,
  two candidate packages);
* återbud: student C, placed on a course and registered in Ladok, gives an återbud in NyA ten days
  after study start: the återbud sync opens a case (registered, suggested action tidigt avbrott);
* the offer export: a finished dry run of the round's ordinary offers (all new: nothing was
  published before);
* a merit message NyA never accepted: given up on after its attempts (a dead letter in the
  quarantine, which the console can retry).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select


def seed(store: Any, w: dict[str, Any]) -> dict[str, Any]:
    from brygga.flows import aterbud, offers
    from brygga.store import ops
    from brygga.store.models import AterbudCase, NyaAdmission, UnhandledAdmission
    from tests.flows.test_admissions import ROUND, START, _admission_of, _run

    _run(store, w)
    (a_d,) = _admission_of(w, "d")
    (a_c,) = _admission_of(w, "c")
    with store.transaction() as s:
        queued = s.scalars(select(UnhandledAdmission).where(UnhandledAdmission.nya_admission_id == a_d.admission_id)).one()
        assert queued.status == "open" and len(queued.candidates) == 2, (queued.hinder, queued.candidates)
        placed_c = s.get(NyaAdmission, a_c.admission_id)
        assert placed_c.state == "placed"
        antagning_c = placed_c.antagning_uid
    w["L"].registrera(antagning_c, 1, START)
    outcome, *_, reason = w["N"].register_aterbud(ROUND, admission_id=a_c.admission_id,
                                                   date=START + dt.timedelta(days=10), origin="applicant")
    assert outcome == "registered", reason
    res = aterbud.nya_to_ladok(store, w["nya"], w["ladok"])
    assert res["case"] == 1, res
    with store.transaction() as s:
        case = s.scalars(select(AterbudCase)).one()
        case_id, action = case.id, case.suggested_action
    assert action == "early_avbrott"

    pid = offers.start(store, round_code=ROUND, kind="ordinary", codes=[], dry_run=True, triggered_by="operator")
    offers.collect(store, w["ladok"], pid)
    offers.finish(store, pid)

    with store.transaction() as s:
        ops.outbox_enqueue(s, [{"destination": "nya", "kind": "merit", "idempotency_key": "nya:merit:console-demo",
                                "correlation": "merits", "payload": {"huid": "console-demo"}}])
        (m,) = ops.outbox_due(s, "nya", kind="merit")
        while m.status != "dead":  # every attempt failed, as the merit sync's send would record them
            ops.outbox_mark_failed(s, m, "NyA answered HTTP 503 Service Unavailable")
    return {"admission_id": a_d.admission_id, "package_uid": w["t"]["pt1"].uid, "package_code": "TKDAT",
            "case_id": case_id, "dry_run_id": pid, "antagning_c": antagning_c}
