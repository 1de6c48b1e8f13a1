"""``brygga aterbud``: list, show, close and apply återbudsärenden, and the settings, through the CLI
entry point (``brygga.cli.main``) against a real store and the Ladok simulator over HTTP."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import select

from brygga import cli
from brygga.store.models import AterbudCase, AuditLog, Setting

pytestmark = pytest.mark.integration


@pytest.fixture
def ladok():
    from simulators._server import serve_in_thread
    from simulators.ladok.app import create_app
    from simulators.ladok.catalogue import seed_catalogue
    from simulators.ladok.state import LadokState

    state = LadokState()
    seed_catalogue(state, 3, 12, 3, "HT2027")
    with serve_in_thread(create_app(state)) as srv:
        srv.state = state
        yield srv


def _registered_case(store, ladok, *, cause="registered", day=10) -> tuple[int, str]:
    """A registered student's admission in Ladok and the case Brygga would have made for it."""
    from brygga.flows.aterbud import suggested_action
    from simulators import datagen
    from simulators.ladok.state import Placering

    t = next(x for x in ladok.state.tillfallen.values()
             if x.utbildning.typ == "kurs" and not x.installt and not x.paketeringar)
    p = next(iter(datagen.people(1, 99, protected_share=0, samordning_share=0)))
    st = ladok.state.etablera_student(p.personnummer, p.fornamn, p.efternamn, emit=False)
    a, _ = ladok.state.placera(Placering(st.uid, t.uid, "HT2027-A9999999"))
    ladok.state.registrera(a.uid, 1, t.start)
    reported = t.start + dt.timedelta(days=day)
    with store.transaction() as s:
        c = AterbudCase(nya_aterbud_id="HT2027-R0000001", round="HT2027", nya_admission_id="HT2027-A9999999",
                        personnummer=p.personnummer, utbildningstillfalle_uid=t.uid,
                        education=f"{t.utbildning.kod} {t.utbildning.sv}", reported_at=reported, cause=cause,
                        suggested_action=suggested_action(cause, reported, t.start), antagning_uid=a.uid,
                        study_start=t.start, status="open")
        s.add(c)
        s.flush()
        return c.id, a.uid


def run(capsys, *argv) -> tuple[int, str]:
    code = cli.main(["aterbud", *argv])
    return code, capsys.readouterr().out


def test_cases_filter_show_and_close(store, ladok, capsys):
    case_id, _ = _registered_case(store, ladok)

    code, out = run(capsys, "cases", "--url", store.url, "--status", "open", "--round", "HT2027", "--json")
    assert code == 0
    (c,) = json.loads(out)
    assert (c["id"], c["cause"], c["suggested_action"]) == (case_id, "registered", "early_avbrott")
    assert c["personnummer"].endswith("****")
    assert json.loads(run(capsys, "cases", "--url", store.url, "--cause", "already_aterbud", "--json")[1]) == []
    code, out = run(capsys, "cases", "--url", store.url)
    assert code == 0 and "registered" in out and "early_avbrott" in out

    code, out = run(capsys, "show", str(case_id), "--url", store.url)
    assert code == 0 and json.loads(out)["study_start"]

    code, out = run(capsys, "close", str(case_id), "--url", store.url, "--note", "Hanterat i Ladok",
                    "--actor", "handlaggare@uni.se")
    assert code == 0 and "closed by handlaggare@uni.se" in out
    assert json.loads(run(capsys, "cases", "--url", store.url, "--status", "open", "--json")[1]) == []
    with store.transaction() as s:
        entry = s.scalars(select(AuditLog).where(AuditLog.action == "aterbud_case.close")).one()
        assert (entry.actor, entry.object_id, entry.detail["note"]) == ("handlaggare@uni.se", str(case_id),
                                                                        "Hanterat i Ladok")
    assert cli.main(["aterbud", "close", "424242", "--url", store.url, "--note", "x"]) == 1


def test_apply_performs_the_avbrott_in_ladok(store, ladok, capsys):
    case_id, antagning_uid = _registered_case(store, ladok, day=25)
    code, out = run(capsys, "apply", str(case_id), "--url", store.url, "--ladok-url", ladok.url,
                    "--actor", "handlaggare@uni.se")
    assert code == 0 and '"early": false' in out
    a = ladok.state.antagning(antagning_uid)
    assert a.avbrott is not None and a.avbrott.tidigt is False
    with store.transaction() as s:
        assert s.get(AterbudCase, case_id).status == "closed"
        acts = s.scalars(select(AuditLog.action).where(AuditLog.object_type == "aterbud_case")
                         .order_by(AuditLog.id)).all()
    assert acts == ["aterbud_case.apply", "aterbud_case.close"]


def test_settings(store, capsys):
    code, out = run(capsys, "settings", "--url", store.url)
    assert code == 0 and "from NyA automatically: yes" in out and "in Ladok:   yes" in out
    code, out = run(capsys, "settings", "--url", store.url, "--accept-from-nya", "no", "--students-may-enter", "no",
                    "--actor", "admin@uni.se")
    assert code == 0 and "from NyA automatically: no" in out and "in Ladok:   no" in out
    with store.transaction() as s:
        assert {r.key: (r.value, r.updated_by) for r in s.scalars(select(Setting))} == {
            "aterbud.accept_from_nya": (False, "admin@uni.se"), "aterbud.students_may_enter": (False, "admin@uni.se")}
        assert len(s.scalars(select(AuditLog).where(AuditLog.action == "setting.set")).all()) == 2
    run(capsys, "settings", "--url", store.url, "--accept-from-nya", "no")  # unchanged: not audited again
    with store.transaction() as s:
        assert len(s.scalars(select(AuditLog).where(AuditLog.action == "setting.set")).all()) == 2
    with pytest.raises(SystemExit):
        cli.main(["aterbud", "settings", "--url", store.url, "--accept-from-nya", "maybe"])
