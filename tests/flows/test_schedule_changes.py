"""The schedule export's changes as its consumers need them, end to end against the simulators on
SQLite and PostgreSQL: self-service and catalogue changes within one delta run, a student who
becomes protected or changes address, one quarantine row per refusal (closed on acceptance), an
invalid e-mail recorded, the guard against mass removal, TimeEdit's own protocol (the old request
shapes refused, tokens that expire) and TimeEdit's file import."""

from __future__ import annotations

import datetime as dt
import json

import pytest
import requests
from lxml import etree
from sqlalchemy import func, select

from brygga import xmlsafe
from brygga.flows.schedule import following, guard, planning, sending
from brygga.paths import SCHEMAS
from brygga.store.models import AuditLog, LadokContact, OutboxMessage, Quarantine, SchedulePlan, ScheduleRemoval
from tests.flows.test_schedule import (  # noqa: F401 (fixtures)
    SCOPE,
    _kinds,
    adapters,
    batch_objects,
    expected_members,
    export,
    held,
    ladok_env,
    schema_env,
)


def _live(st):
    return [a for a in st.antagningar.values() if a.tillstand in ("ej_paborjad", "registrerad")
            and not a.tillfalle.installt and a.tillfalle.startperiod == "HT2027"]


def _delta(store, ladok, schedule):
    followed = following.follow(store, ladok)
    summary, sent = export(store, ladok, schedule, mode="delta")
    return followed, summary, sent


# ----------------------------------------------------------------------------- within one delta
def test_self_service_and_catalogue_changes_reach_the_system_with_the_next_delta(store, ladok_env, schema_env):
    ladok, schedule = adapters(ladok_env, schema_env)
    st = ladok_env.state
    following.follow(store, ladok)
    export(store, ladok, schedule)
    # an anmälan removed by the student (ForvantatDeltagandeBorttagetEvent)
    gone = next(a for a in _live(st) if a.tillstand == "ej_paborjad")
    st.ta_bort_forvantat_deltagande(gone.uid, av_student=True)
    # a cancelled instance reactivated (UtbildningstillfalleAteraktiveratEvent)
    back = next(t for t in st.tillfallen.values() if t.installt and t.startperiod == "HT2027")
    st.ateraktivera(back.uid)
    # a course instance's facts changed in the catalogue (KurstillfalleUppdateratEvent)
    moved = next(t for t in st.tillfallen.values() if not t.installt and t.startperiod == "HT2027"
                 and t.utbildning.typ == "kurs" and t is not gone.tillfalle)
    new_end = moved.slut + dt.timedelta(days=14)
    st.uppdatera_tillfalle(moved.uid, slut=new_end)
    followed, summary, _ = _delta(store, ladok, schedule)
    assert followed["marked"] >= 3 and summary["mode"] == "delta"
    assert f"{gone.tillfalle.uid}:{gone.student_uid}" not in held(schema_env, "medlemskap")
    assert held(schema_env, "utbildningstillfalle")[back.uid].active is True
    assert held(schema_env, "studentgrupp")[f"{back.uid}:grupp"].active is True
    assert held(schema_env, "utbildningstillfalle")[moved.uid].fields["slut"] == new_end.isoformat()


def test_an_instance_switch_moves_the_membership_within_one_delta(store, ladok_env, schema_env):
    """OmregistreringEvent names the instance left (ForegaendeKurstillfalleUID) and the new one."""
    ladok, schedule = adapters(ladok_env, schema_env)
    st = ladok_env.state
    following.follow(store, ladok)
    export(store, ladok, schedule)
    a = next(a for a in _live(st) if a.tillstand == "ej_paborjad" and a.tillfalle.utbildning.typ == "kurs")
    other = st.add_tillfalle(a.tillfalle.utbildning, "99901", a.tillfalle.start, a.tillfalle.slut, omgangar=["HT2027"])
    st.registrera(a.uid, 1, a.tillfalle.start)
    _delta(store, ladok, schedule)
    st.omregistrera(a.uid, other.uid, a.tillfalle.start + dt.timedelta(days=1))
    followed, summary, _ = _delta(store, ladok, schedule)
    members = held(schema_env, "medlemskap")
    assert f"{a.tillfalle.uid}:{a.student_uid}" not in members
    assert members[f"{other.uid}:{a.student_uid}"].fields["roll"] == "registrerad"


def test_a_new_e_mail_address_reaches_the_system_with_the_next_delta(store, ladok_env, schema_env):
    """KontaktuppgifterEvent: the cached address is forgotten and the student's instances marked."""
    ladok, schedule = adapters(ladok_env, schema_env)
    st = ladok_env.state
    following.follow(store, ladok)
    export(store, ladok, schedule)
    student = next(s for uid, s in st.students.items() if not s.skyddad and s.epost
                   and uid in held(schema_env, "student"))
    with store.transaction() as s:
        assert s.get(LadokContact, student.uid).email == student.epost
    st.andra_epost(student.uid, "ny.adress@student.example.se")
    followed, summary, _ = _delta(store, ladok, schedule)
    assert followed["marked"] >= 1 and summary["email_lookups"] >= 1
    assert held(schema_env, "student")[student.uid].fields["epost"] == "ny.adress@student.example.se"


def test_a_protected_student_leaves_brygga_s_own_store_at_once(store, ladok_env, schema_env):
    """The name and e-mail of a student who becomes protected leave the kept outbox batches with
    the feed's event (sent or not yet sent), before any export runs; the next delta sends the
    protected form."""
    ladok, schedule = adapters(ladok_env, schema_env)
    st = ladok_env.state
    following.follow(store, ladok)
    export(store, ladok, schedule)
    student = next(s for uid, s in st.students.items() if not s.skyddad and s.epost
                   and uid in held(schema_env, "student"))
    epost = student.epost
    student.fornamn = "Nyttnamn"  # a version not yet sent, also carrying the name
    planning.plan(store, ladok, schedule, mode="full", scope=SCOPE)

    def kept() -> tuple[str, list]:
        with store.transaction() as s:
            text = json.dumps([m.payload for m in s.scalars(select(OutboxMessage))], ensure_ascii=False)
        return text, [x for _, o, x in batch_objects(store) if o[0] == "student" and o[1] == student.uid]

    text, items = kept()
    assert epost in text and "Nyttnamn" in text and len(items) == 2 and all(items)
    st.skydda(student.uid)
    followed = following.follow(store, ladok)
    assert followed["scrubbed_batches"] == 2  # the sent batch and the one waiting
    text, items = kept()
    assert epost not in text and "Nyttnamn" not in text and items == [None, None]
    with store.transaction() as s:
        assert s.get(LadokContact, student.uid) is None
    schema_env.state.bodies.clear()
    _, summary, _ = _delta(store, ladok, schedule)
    assert held(schema_env, "student")[student.uid].fields == {"skyddad": True}
    assert student.efternamn.encode() not in b"".join(schema_env.state.bodies)


# ----------------------------------------------------------------------------- quarantine
def test_one_refusal_is_one_quarantine_row_closed_when_the_object_is_accepted(store, ladok_env, schema_env):
    ladok, schedule = adapters(ladok_env, schema_env)
    bad = next(t for t in ladok_env.state.tillfallen.values() if t.startperiod == "HT2027" and not t.installt)
    name = bad.utbildning.sv
    bad.utbildning.sv = ""  # Ladok gives no Swedish name: the system requires namn_sv

    def open_rows():
        with store.transaction() as s:
            return s.scalars(select(Quarantine).where(Quarantine.released_at.is_(None))).all()

    def of_instance():
        rows = [r for r in open_rows() if r.message_id == f"instance:{bad.uid}"]
        assert len(rows) == 1  # one row, not one per layer (the batch is not dead: the rest of it went)
        return rows[0]

    _, sent = export(store, ladok, schedule)
    row = of_instance()
    assert "namn_sv" in row.reason and row.kind == "schedule-object" and row.source == "schema:timeedit"
    # its group and members name an instance the system does not have: each refused on its own
    assert all("inte finns" in r.reason for r in open_rows() if r.id != row.id)
    assert sent["rejected"] == len(open_rows())
    export(store, ladok, schedule, reconcile=True)  # the nightly run tries again: still refused, still one row
    again = of_instance()
    assert again.id == row.id and again.attempts == 2
    bad.utbildning.sv = name  # put right in Ladok: accepted with the next run, its row closes
    _, sent = export(store, ladok, schedule)
    assert sent["sent"] >= 1 and not [r for r in open_rows() if r.message_id == f"instance:{bad.uid}"]
    assert held(schema_env, "utbildningstillfalle")[bad.uid].fields["namn_sv"] == name
    export(store, ladok, schedule, reconcile=True)  # the nightly run sends its group and members again
    assert open_rows() == []
    assert set(held(schema_env, "medlemskap")) == expected_members(ladok_env.state)


def test_an_invalid_e_mail_address_from_ladok_is_quarantined_by_student(store, ladok_env, schema_env):
    ladok, schedule = adapters(ladok_env, schema_env)
    student = next(s for s in ladok_env.state.students.values() if not s.skyddad and any(
        a.student_uid == s.uid for a in _live(ladok_env.state)))
    student.epost = "anna.berg(at)student"
    export(store, ladok, schedule)
    with store.transaction() as s:
        (row,) = s.scalars(select(Quarantine).where(Quarantine.released_at.is_(None))).all()
    assert row.message_id == student.uid and "e-mail" in row.reason and "anna.berg" not in row.reason
    assert "epost" not in held(schema_env, "student")[student.uid].fields  # out without an address


# ----------------------------------------------------------------------------- the guard
def _half_of_the_term_leaves(st):
    """Half the instances of the term move to the spring: as if Ladok's reply were half empty."""
    courses = [t for t in st.tillfallen.values() if t.startperiod == "HT2027" and t.utbildning.typ == "kurs"]
    for t in courses[: len(courses) // 2]:
        st.flytta_tillfalle(t.uid, dt.date(2028, 1, 17))
    return courses[: len(courses) // 2]


def test_a_run_that_would_end_half_the_scope_is_held_until_approved(store, ladok_env, schema_env):
    ladok, schedule = adapters(ladok_env, schema_env)
    export(store, ladok, schedule)
    before = {typ: _kinds(schema_env, typ) for typ in ("utbildningstillfalle", "medlemskap", "student")}
    left = _half_of_the_term_leaves(ladok_env.state)
    stays = next(t for t in ladok_env.state.tillfallen.values() if t.startperiod == "HT2027" and not t.installt
                 and t.utbildning.typ == "kurs")
    stays.utbildning.en = "Renamed in Ladok"  # an ordinary change in the same run goes as usual
    summary, _ = export(store, ladok, schedule)
    g = summary["guard"]
    assert g["held"] and g["removals"] > g["limit"] > 0
    assert {typ: _kinds(schema_env, typ) for typ in before} == before  # nothing ended
    assert held(schema_env, "utbildningstillfalle")[stays.uid].fields["namn_en"] == "Renamed in Ladok"
    (plan,) = guard.held_plans(store, "timeedit")
    assert plan.id == g["plan"] and plan.removals == g["removals"] and plan.counts["deactivate.instance"] == len(left)
    assert "guard allows" in plan.reason
    shown = guard.removals(store, plan.id, limit=10_000)
    assert {e for a, k, e, _ in shown if k == "instance"} == {t.uid for t in left}

    out = guard.decide(store, schedule, plan.id, approve=True, actor="operator:anna")
    assert out["enqueued"] == plan.removals and out.get("skipped", 0) == 0
    sending.send(store, schedule)
    assert {t.uid for t in left} <= _kinds(schema_env, "utbildningstillfalle", active=False)
    assert not [m for m in held(schema_env, "medlemskap") if m.partition(":")[0] in {t.uid for t in left}]
    with store.transaction() as s:
        actions = [a.action for a in s.scalars(select(AuditLog).where(AuditLog.object_type == "schedule_plan"))]
        assert actions == ["schedule.removals_held", "schedule.removals_approved"]
        assert s.scalar(select(func.count()).select_from(ScheduleRemoval)) == 0
    again, _ = export(store, ladok, schedule)
    assert again["changes"] == {} and not again["guard"]["held"]


def test_a_rejected_plan_ends_nothing_and_the_next_run_asks_again(store, ladok_env, schema_env):
    ladok, schedule = adapters(ladok_env, schema_env)
    export(store, ladok, schedule)
    _half_of_the_term_leaves(ladok_env.state)
    first, _ = export(store, ladok, schedule)
    guard.decide(store, schedule, first["guard"]["plan"], approve=False, actor="operator:anna", note="fel termin")
    before = len(schema_env.state.objects)
    second, _ = export(store, ladok, schedule)
    assert second["guard"]["held"] and second["guard"]["plan"] != first["guard"]["plan"]
    assert len(schema_env.state.objects) == before
    with store.transaction() as s:
        states = dict(s.execute(select(SchedulePlan.id, SchedulePlan.status)).all())
    assert states == {first["guard"]["plan"]: "rejected", second["guard"]["plan"]: "held"}
    with pytest.raises(ValueError):
        guard.decide(store, schedule, first["guard"]["plan"], approve=True, actor="operator:anna")
    # a third run supersedes the second's plan: only the newest is the operator's to decide
    third, _ = export(store, ladok, schedule)
    with store.transaction() as s:
        assert s.get(SchedulePlan, second["guard"]["plan"]).status == "superseded"
    assert [p.id for p in guard.held_plans(store)] == [third["guard"]["plan"]]


def test_a_run_within_the_guard_ends_at_once_and_a_count_limit_holds_too(store, ladok_env, schema_env):
    ladok, schedule = adapters(ladok_env, schema_env)
    export(store, ladok, schedule)
    one = next(t for t in ladok_env.state.tillfallen.values() if t.startperiod == "HT2027" and not t.installt
               and t.utbildning.typ == "kurs" and ladok_env.state.by_tillfalle.get(t.uid))
    ladok_env.state.flytta_tillfalle(one.uid, dt.date(2028, 1, 17))
    summary, _ = export(store, ladok, schedule)
    assert not summary["guard"]["held"] and summary["changes"]["deactivate.instance"] == 1
    assert one.uid in _kinds(schema_env, "utbildningstillfalle", active=False)
    # the same share under a count limit of 3 objects is held
    two = next(t for t in ladok_env.state.tillfallen.values() if t.startperiod == "HT2027" and not t.installt
               and t.utbildning.typ == "kurs" and ladok_env.state.by_tillfalle.get(t.uid))
    ladok_env.state.flytta_tillfalle(two.uid, dt.date(2028, 1, 17))
    _, strict = adapters(ladok_env, schema_env, removal_guard_count=3)
    summary, _ = export(store, ladok, strict)
    assert summary["guard"]["held"] and summary["guard"]["limit"] == 3
    assert two.uid in _kinds(schema_env, "utbildningstillfalle")


def test_a_run_that_died_while_staging_leaves_nothing_staged(store, ladok_env, schema_env, monkeypatch):
    from tests.flows.test_schedule import killed_on_read

    ladok, schedule = adapters(ladok_env, schema_env)
    export(store, ladok, schedule, chunk=3)
    st = ladok_env.state
    for uid in list(st.by_tillfalle)[::2]:  # Ladok answers half the instances with no participant
        st.by_tillfalle[uid] = []
    with pytest.raises(ConnectionError), killed_on_read(monkeypatch, 3):
        planning.plan(store, ladok, schedule, mode="full", scope=SCOPE, chunk=3)
    with store.transaction() as s:
        assert s.scalars(select(SchedulePlan.status)).all() == ["staging"]
        staged = s.scalar(select(func.count()).select_from(ScheduleRemoval))
    assert staged > 0
    summary, _ = export(store, ladok, schedule, chunk=3)
    assert summary["guard"]["held"] and summary["guard"]["removals"] > staged
    with store.transaction() as s:  # the dead run's staging dropped: only the new run's removals, once each
        assert s.scalars(select(SchedulePlan.status)).all() == ["held"]
        rows = s.execute(select(ScheduleRemoval.kind, ScheduleRemoval.ext_id)).all()
    assert len(rows) == len(set(rows)) == summary["guard"]["removals"]


# ----------------------------------------------------------------------------- TimeEdit's protocol
def _token(schema_env) -> str:
    r = requests.post(f"{schema_env.url}/v1/organizations/brygga-sim/api-keys/authenticate",
                      headers={"Authorization": "Api-Key sim-api-key", "X-Region": "EU_EES"}, timeout=10)
    r.raise_for_status()
    return r.json()["token"]


def test_the_timeedit_simulator_refuses_the_old_request_shapes(schema_env):
    url, bearer = schema_env.url, {"Authorization": f"Bearer {_token(schema_env)}"}
    old = {"objects": [{"type": "student", "extId": "s1", "fields": {"fornamn": "Anna"}, "active": True}]}
    assert requests.post(f"{url}/api/v1/objects/upsert?mode=PATCH", json=old, headers=bearer, timeout=10).status_code == 404
    assert requests.post(f"{url}/v1/objects/upsert?mode=PATCH", json=old, headers=bearer, timeout=10).status_code == 400
    assert requests.post(f"{url}/v1/objects/upsert", json={**old, "idFormat": "EXTERNAL"}, headers=bearer,
                         timeout=10).status_code == 400  # no importMode in the body
    flat = requests.post(f"{url}/v1/objects/upsert", json={**old, "idFormat": "EXTERNAL", "importMode": "PATCH"},
                         headers=bearer, timeout=10)
    assert flat.status_code == 207 and flat.json()["results"][0]["status"] == 422  # typeId, fields as a list
    inline = {"idFormat": "EXTERNAL", "importMode": "PATCH",
              "objects": [{"typeId": "student", "extId": "s1", "operation": "delete"}]}
    r = requests.post(f"{url}/v1/objects/upsert", json=inline, headers=bearer, timeout=10)
    assert r.json()["results"][0]["status"] == 422 and "DELETE /v1/objects" in r.json()["results"][0]["message"]
    ok = {"idFormat": "EXTERNAL", "importMode": "PATCH", "objects": [
        {"typeId": "student", "extId": "s1", "organizations": ["brygga"],
         "fields": [{"fieldId": "student.fornamn", "values": ["Anna"]}]}]}
    assert requests.post(f"{url}/v1/objects/upsert", json=ok, timeout=10).status_code == 401  # no token
    assert requests.post(f"{url}/v1/objects/upsert", json=ok, headers=bearer, timeout=10).json()["results"][0][
        "status"] == 201
    bad_key = requests.post(f"{url}/v1/organizations/brygga-sim/api-keys/authenticate",
                            headers={"Authorization": "Api-Key wrong", "X-Region": "EU_EES"}, timeout=10)
    assert bad_key.status_code == 401


def test_organizations_replace_whole_and_put_clears_what_it_does_not_name(schema_env):
    url, bearer = schema_env.url, {"Authorization": f"Bearer {_token(schema_env)}"}

    def upsert(mode, obj):
        body = {"idFormat": "EXTERNAL", "importMode": mode, "objects": [obj]}
        return requests.post(f"{url}/v1/objects/upsert", json=body, headers=bearer, timeout=10).json()["results"][0]

    assert upsert("PATCH", {"typeId": "student", "extId": "s1", "organizations": ["a", "b"], "fields": [
        {"fieldId": "student.fornamn", "values": ["Anna"]}, {"fieldId": "student.efternamn", "values": ["Berg"]}]})[
        "status"] == 201
    upsert("PATCH", {"typeId": "student", "extId": "s1", "organizations": ["c"],
                     "fields": [{"fieldId": "student.fornamn", "values": ["Ann"]}]})
    o = schema_env.state.objects[("student", "s1")]
    assert o.organizations == ("c",) and o.plain() == {"fornamn": "Ann", "efternamn": "Berg"}  # PATCH keeps efternamn
    upsert("PUT", {"typeId": "student", "extId": "s1", "fields": [{"fieldId": "student.fornamn", "values": ["Ann"]}]})
    o = schema_env.state.objects[("student", "s1")]
    assert o.organizations == ("c",) and o.plain() == {"fornamn": "Ann"}  # PUT clears what it does not name


def test_an_expired_token_is_renewed_once_and_the_export_goes_on(store, ladok_env, schema_env):
    ladok, schedule = adapters(ladok_env, schema_env, batch=60)
    planning.plan(store, ladok, schedule, mode="full", scope=SCOPE)
    sending.send(store, schedule, max_requests=1)
    tokens = schema_env.state.stats["auth.tokens"]
    schema_env.state.expire_tokens()
    sending.send(store, schedule)
    assert schema_env.state.stats["auth.tokens"] == tokens + 1
    assert set(held(schema_env, "medlemskap")) == expected_members(ladok_env.state)


def test_a_wrong_api_key_fails_the_send_for_good_and_keeps_the_outbox(store, ladok_env, schema_env):
    from adapters.http import PeerError
    from adapters.schema import ScheduleAdapter
    from brygga.connections import PeerConfig
    from tests.flows.test_schedule import TIMEEDIT

    ladok, schedule = adapters(ladok_env, schema_env)
    planning.plan(store, ladok, schedule, mode="full", scope=SCOPE)
    wrong = ScheduleAdapter(PeerConfig("schema", schema_env.url, password="wrong", extra={**TIMEEDIT}))
    with pytest.raises(PeerError) as e:
        wrong._call("POST", "/v1/objects/find", b'{"idFormat": "EXTERNAL", "typeId": "student"}')
    assert not e.value.transient and "API key was refused" in str(e.value)
    with store.transaction() as s:
        before = sorted((m.id, m.status, m.attempts) for m in s.scalars(select(OutboxMessage)))
    with pytest.raises(PeerError, match="API key was refused"):  # the send stops at once, saying why
        sending.send(store, wrong)
    with store.transaction() as s:  # no batch failed or given up on for it
        assert sorted((m.id, m.status, m.attempts) for m in s.scalars(select(OutboxMessage))) == before
    assert schema_env.state.objects == {}
    assert sending.send(store, schedule)["sent"] == len(schema_env.state.objects) > 0  # the right key sends all


# ----------------------------------------------------------------------------- TimeEdit's file import
def test_timeedit_files_are_written_whole_valid_and_say_what_ended(store, ladok_env, schema_env, tmp_path):
    ladok, schedule = adapters(ladok_env, schema_env, "timeedit-file", directory=str(tmp_path), batch=100)
    summary, sent = export(store, ladok, schedule)
    files = sorted(tmp_path.glob("*.xml"))
    assert len(files) == sent["requests"] >= 2 and not list(tmp_path.glob(".incoming-*"))
    xsd = xmlsafe.load_schema(SCHEMAS / "schema" / "timeedit-import-1.xsd")
    objects = []
    for f in files:
        doc = xmlsafe.fromstring(f.read_bytes())
        xsd.assertValid(doc)
        objects += doc.findall("object")
    assert len(objects) == summary["objects"]

    def status(o: etree._Element) -> str:
        t = o.findtext("types/type")
        return next(f.findtext("value") for f in o.iter("field") if f.findtext("extid") == f"{t}.status")

    members = {o.findtext("extid") for o in objects if o.findtext("types/type") == "medlemskap"}
    assert members == expected_members(ladok_env.state)
    assert all(status(o) in ("aktiv", "inaktiv") for o in objects)
    student = next(o for o in objects if o.findtext("types/type") == "student")
    assert [x.text for x in student.iter("organization")] == ["brygga"]
    a = next(a for a in _live(ladok_env.state) if a.tillstand == "ej_paborjad")
    ladok_env.state.aterbud(a.uid, a.tillfalle.start, "studiedeltagande.domain.aterbudsorsak.uteblev", None)
    before = set(tmp_path.glob("*.xml"))
    export(store, ladok, schedule)
    new = [xmlsafe.fromstring(f.read_bytes()) for f in set(tmp_path.glob("*.xml")) - before]
    ended = [o for d in new for o in d.findall("object") if o.findtext("extid") == f"{a.tillfalle.uid}:{a.student_uid}"]
    assert [status(o) for o in ended] == ["borttagen"]
