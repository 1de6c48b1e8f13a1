"""Admission import NyA → Ladok, what operators do with queued admissions (``review.py``): ompröva,
fristående, handled, the CLI. Against the simulators over HTTP, on both stores (the world:
``tests/flows/admissions_world.py``)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from brygga import personnummer as pnr_mod
from brygga import views
from brygga.flows import admissions
from brygga.store.models import (
    AuditLog,
)
from tests.flows.admissions_world import (
    ROUND,
    _admission_of,
    _ladok_admission,
    _queue,
    _run,
    world,  # noqa: F401 - the fixture
)


def test_operator_retry_with_package_free_standing_and_handled(store, world):
    w = world
    _run(store, w)
    t = w["t"]
    (a_d,) = _admission_of(w, "d")
    (a_e,) = _admission_of(w, "e")
    (a_g,) = _admission_of(w, "g")

    with pytest.raises(ValueError):
        admissions.retry(store, w["ladok"], w["folk"], a_d.admission_id, actor="op", package_uid=t["pt1"].uid,
                         fristaende=True)
    # A package that does not contain the course: still unhandled, the reason says why.
    res = admissions.retry(store, w["ladok"], w["folk"], a_d.admission_id, actor="anna", package_uid=t["pt3"].uid)
    assert res["outcome"] == "unhandled" and res["hinder"] == "kunde.inte.placeras.i.plan"
    res = admissions.retry(store, w["ladok"], w["folk"], a_d.admission_id, actor="anna", package_uid=t["pt1"].uid)
    assert res["outcome"] == "placed" and res["package_uid"] == t["pt1"].uid
    assert _ladok_admission(w, a_d.admission_id).paket.tillfalle is t["pt1"]

    res = admissions.retry(store, w["ladok"], w["folk"], a_e.admission_id, actor="anna", fristaende=True)
    assert res["outcome"] == "placed" and res["package_uid"] is None
    assert _ladok_admission(w, a_e.admission_id).paket is None

    admissions.mark_handled(store, a_g.admission_id, actor="bertil", note="tillfällesbyte gjort")
    again = admissions.retry(store, w["ladok"], w["folk"], a_g.admission_id, actor="anna")
    assert again["outcome"] == "handled" and again["already"]  # a repeated action is not an error

    queue = _queue(store)
    assert queue[a_d.admission_id].status == "resolved" and queue[a_d.admission_id].resolved_by == "anna"
    assert queue[a_e.admission_id].resolution == "ompröva: fristående"
    assert queue[a_g.admission_id].status == "manual" and queue[a_g.admission_id].resolution == "tillfällesbyte gjort"
    assert "redan.paborjat" not in views.count_unhandled(store, round=ROUND, status="open")
    with store.transaction() as s:
        actions = [(a.actor, a.action) for a in s.scalars(select(AuditLog).where(
            AuditLog.object_id.in_([a_d.admission_id, a_e.admission_id, a_g.admission_id])).order_by(AuditLog.id))]
    assert actions.count(("anna", "admission.retry")) == 3 and ("bertil", "admission.handled") in actions
    # Placed admissions are not re-placed by the next import run.
    assert _run(store, w)[1]["placed"] == 0


def test_operator_cli_count_list_retry_handled(store, world, capsys, monkeypatch):
    from brygga import cli

    w = world
    _run(store, w)
    url = store.engine.url.render_as_string(hide_password=False)
    assert cli.main(["admissions", "--url", url, "count", "--round", ROUND]) == 0
    out = capsys.readouterr().out
    assert "kunde.inte.placeras.i.plan" in out and out.strip().endswith("total")
    total = int(out.strip().splitlines()[-1].split()[0])
    assert total == sum(views.count_unhandled(store, round=ROUND, status="open").values()) == 7

    assert cli.main(["admissions", "--url", url, "list", "--hinder", "personnummer.okant"]) == 0
    out = capsys.readouterr().out
    assert pnr_mod.mask(w["p"]["unknown"]) in out and w["p"]["unknown"] not in out and "1 admission(s)" in out

    (a_d,) = _admission_of(w, "d")
    monkeypatch.setenv("BRYGGA_LADOK_URL", w["ladok"].base)
    monkeypatch.setenv("BRYGGA_FOLKBOKFORING_URL", w["folk"].base)
    assert cli.main(["admissions", "--url", url, "--actor", "cecilia", "ompröva", a_d.admission_id,
                     "--package", w["t"]["pt2"].uid]) == 0
    assert _ladok_admission(w, a_d.admission_id).paket.tillfalle is w["t"]["pt2"]
    (a_g,) = _admission_of(w, "g")
    assert cli.main(["admissions", "--url", url, "--actor", "cecilia", "handled", a_g.admission_id,
                     "--note", "byte"]) == 0
    capsys.readouterr()
    assert cli.main(["admissions", "--url", url, "count"]) == 0
    assert int(capsys.readouterr().out.strip().splitlines()[-1].split()[0]) == 5
