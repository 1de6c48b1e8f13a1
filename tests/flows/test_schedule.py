"""The schedule export end to end against the Ladok and scheduling-system simulators over HTTP,
on SQLite and PostgreSQL (the ``store`` fixture)."""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import os
import signal
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

from types import SimpleNamespace

import pytest
from lxml import etree
from sqlalchemy import select

from adapters.http import PeerError
from adapters.ladok import LadokAdapter
from adapters.schema import ScheduleAdapter
from brygga.connections import PeerConfig
from brygga.flows.schedule import following, planning, sending
from brygga.flows.schedule.planning import Scope
from brygga.store.models import OutboxMessage, Quarantine, ScheduleObject
from mappings.schema import oneroster
from mappings.schema.timeedit import _value as te_value
from simulators._server import serve_in_thread
from simulators.ladok.app import create_app as ladok_app
from simulators.ladok.catalogue import seed_catalogue
from simulators.ladok.state import LadokState
from simulators.schema.app import create_app as schema_app
from simulators.schema.state import ScheduleState

SCOPE = Scope(("HT2027",))


@pytest.fixture
def ladok_env():
    state = LadokState(page_size=50)
    seed_catalogue(state, 7, 8, 2, "HT2027")
    students = state.seed_students(60, 7)
    students[0].skyddad = True  # skyddade personuppgifter
    state.seed_deltagande(students, [t for t in state.tillfallen.values() if not t.installt], 12, seed=7)
    with serve_in_thread(ladok_app(state)) as srv:
        srv.state = state
        yield srv


@pytest.fixture
def schema_env():
    state = ScheduleState()
    state.record_bodies = True
    with serve_in_thread(schema_app(state)) as srv:
        srv.state = state
        yield srv


TIMEEDIT = {"organization_id": "brygga-sim", "default_organization": "brygga"}


def adapters(ladok_env, schema_env, fmt="timeedit", **extra):
    ladok = LadokAdapter(PeerConfig("ladok", ladok_env.url))
    schedule = ScheduleAdapter(PeerConfig("schema", schema_env.url, password="sim-api-key",
                                          extra={"format": fmt, "terms": ["HT2027"], **TIMEEDIT, **extra}))
    return ladok, schedule


def fresh_export(ladok_env, tmp_path) -> ScheduleState:
    """What a fresh full export of the same Ladok makes of a fresh system, from an empty store."""
    from brygga.store import Store, migrate

    fresh_store = Store(f"sqlite:///{tmp_path / 'fresh.db'}")
    migrate.upgrade(fresh_store)
    fresh = ScheduleState()
    with serve_in_thread(schema_app(fresh)) as other:
        export(fresh_store, *adapters(ladok_env, other))
    return fresh


def held_state(state: ScheduleState) -> dict:
    """Every object the system holds: its fields, whether active, its organizations."""
    return {k: (o.fields, o.active, o.organizations) for k, o in state.objects.items()}


def export(store, ladok, schedule, mode="full", **kw):
    summary = planning.plan(store, ladok, schedule, mode=mode, scope=SCOPE, **kw)
    return summary, sending.send(store, schedule)


def held(schema_env, typ):
    """What the system holds of a type, its fields as Brygga's model has them."""
    return {ext: SimpleNamespace(fields={k: te_value(k, v) for k, v in o.fields.items()}, active=o.active,
                                 organizations=o.organizations)
            for (t, ext), o in schema_env.state.objects.items() if t == typ}


def sent_objects(schema_env):
    """Every object the system was sent (upserts and deletes), as sent."""
    return [o for b in schema_env.state.bodies for o in json.loads(b).get("objects", [])]


def batch_objects(store):
    """(batch status, [kind, ext_id, action, version, ...], item) of every object in the outbox."""
    with store.transaction() as s:
        return [(m.status, o, x) for m in s.scalars(select(OutboxMessage))
                for o, x in zip(m.payload["objects"], m.payload["items"], strict=True)]


def expected_members(ladok_state):
    return {f"{a.tillfalle.uid}:{a.student_uid}" for a in ladok_state.antagningar.values()
            if a.tillfalle.startperiod == "HT2027" and not a.tillfalle.installt
            and a.tillstand in ("ej_paborjad", "registrerad")}


@contextlib.contextmanager
def killed_on_read(monkeypatch, n):
    """The plan dies (as under kill -9) when it reads its n-th chunk from Ladok."""
    from brygga.flows.schedule import reading

    real, calls = reading.read, []

    def dies(*a, **kw):
        calls.append(1)
        if len(calls) == n:
            raise ConnectionError("killed")
        return real(*a, **kw)

    monkeypatch.setattr(reading, "read", dies)
    try:
        yield
    finally:
        monkeypatch.setattr(reading, "read", real)


def test_full_export_puts_instances_counts_and_groups_in_the_system(store, ladok_env, schema_env):
    ladok, schedule = adapters(ladok_env, schema_env)
    summary, sent = export(store, ladok, schedule)
    assert sent.get("rejected", 0) == 0
    instances = held(schema_env, "utbildningstillfalle")
    in_term = [t for t in ladok_env.state.tillfallen.values() if t.startperiod == "HT2027"]
    assert set(instances) == {t.uid for t in in_term}
    assert set(held(schema_env, "medlemskap")) == expected_members(ladok_env.state)
    # counts per instance are Ladok's
    t = next(t for t in in_term if ladok_env.state.by_tillfalle.get(t.uid))
    parts = ladok_env.state.by_tillfalle[t.uid]
    f = instances[t.uid].fields
    assert f["antal_antagna"] == len(parts)
    assert f["antal_registrerade"] == sum(a.tillstand == "registrerad" for a in parts)
    assert f["antal_aterbud"] == sum(a.tillstand == "aterbud" for a in parts)
    assert f["antal_avbrott"] == sum(a.tillstand in ("avbrott", "tidigtavbrott") for a in parts)
    assert f["antal_forvantade"] == sum(a.tillstand == "ej_paborjad" for a in parts)
    assert f["kod"] == t.utbildning.kod and f["undervisningssprak"] == "sv" and f["organisation"]
    programme = next(p for p in in_term if p.utbildning.typ == "program")
    assert instances[programme.uid].fields["kurstillfallen"] == programme.ingaende
    # a cancelled instance is there, deactivated
    cancelled = [x for x in in_term if x.installt]
    assert cancelled and all(instances[x.uid].active is False for x in cancelled)
    # what the store holds matches: every object's latest version is in a batch that was sent
    with store.transaction() as s:
        rows = s.execute(select(ScheduleObject.kind, ScheduleObject.outbox_id)).all()
        sent_batches = set(s.scalars(select(OutboxMessage.id).where(OutboxMessage.status == "sent")))
    assert rows and all(b in sent_batches for _, b in rows)
    assert summary["objects"] == len(rows)
    # TimeEdit's organisations: an instance's unit (its own code: no map given), a student the default
    assert instances[t.uid].organizations == (f["organisation"],)
    assert all(o.organizations == ("brygga",) for o in held(schema_env, "student").values())


def test_the_first_delta_to_a_system_is_a_full_export(store, ladok_env, schema_env):
    ladok, schedule = adapters(ladok_env, schema_env)
    summary, _ = export(store, ladok, schedule, mode="delta")
    assert summary["mode"] == "full" and set(held(schema_env, "medlemskap")) == expected_members(ladok_env.state)
    again, _ = export(store, ladok, schedule, mode="delta")
    assert again["mode"] == "delta" and again["changes"] == {}


def test_a_rerun_with_nothing_changed_sends_nothing(store, ladok_env, schema_env):
    ladok, schedule = adapters(ladok_env, schema_env)
    export(store, ladok, schedule)
    requests = schema_env.state.stats["requests"]
    summary, sent = export(store, ladok, schedule)
    assert summary["changes"] == {} and summary["enqueued"] == 0
    assert sent["requests"] == 0 and schema_env.state.stats["requests"] == requests


def test_protected_identity_is_exported_by_uid_only(store, ladok_env, schema_env):
    ladok, schedule = adapters(ladok_env, schema_env)
    protected = next(s for s in ladok_env.state.students.values() if s.skyddad)
    assert any(a.student_uid == protected.uid and a.tillstand in ("ej_paborjad", "registrerad")
               for a in ladok_env.state.antagningar.values())
    export(store, ladok, schedule)
    there = held(schema_env, "student")[protected.uid]
    assert there.fields.get("skyddad") is True
    assert not any(there.fields.get(n) for n in ("fornamn", "efternamn", "epost"))
    wire = b"".join(schema_env.state.bodies).decode()
    assert protected.epost and protected.epost not in wire and protected.personnummer not in wire
    mine = [o for o in sent_objects(schema_env) if o["extId"] == protected.uid]
    assert mine and all({f["fieldId"]: f["values"] for f in o["fields"]} == {
        "student.fornamn": [], "student.efternamn": [], "student.epost": [], "student.skyddad": ["true"]}
        for o in mine)
    with store.transaction() as s:
        payloads = [m.payload for m in s.scalars(select(OutboxMessage))]
    assert protected.epost not in json.dumps(payloads, ensure_ascii=False)
    # and no e-mail was looked up for them
    from brygga.store.models import LadokContact
    with store.transaction() as s:
        assert s.get(LadokContact, protected.uid) is None


def test_a_student_who_becomes_protected_loses_name_and_e_mail_with_the_next_delta(store, ladok_env, schema_env):
    """SkyddadePersonuppgifterEvent: the student's cached e-mail is forgotten at once and the
    instances they are a member of are marked, so the next delta (not the nightly full run)
    leaves only the UID and the mark in the scheduling system."""
    from brygga.store.models import LadokContact

    ladok, schedule = adapters(ladok_env, schema_env)
    st = ladok_env.state
    following.follow(store, ladok)
    export(store, ladok, schedule)
    student = next(s for uid, s in st.students.items() if not s.skyddad and s.epost
                   and held(schema_env, "student").get(uid) is not None)
    assert held(schema_env, "student")[student.uid].fields["epost"] == student.epost
    with store.transaction() as s:
        assert s.get(LadokContact, student.uid) is not None
    groups = {m.partition(":")[0] for m in held(schema_env, "medlemskap") if m.endswith(f":{student.uid}")}
    st.skydda(student.uid)
    followed = following.follow(store, ladok)
    assert followed["marked"] == len(groups) > 0
    with store.transaction() as s:
        assert s.get(LadokContact, student.uid) is None
    summary, _ = export(store, ladok, schedule, mode="delta")
    there = held(schema_env, "student")[student.uid]
    assert there.fields.get("skyddad") is True
    assert not any(there.fields.get(n) for n in ("fornamn", "efternamn", "epost"))


def test_feed_delta_aterbud_and_early_avbrott_remove_memberships_cancelled_instance_is_deactivated(
        store, ladok_env, schema_env):
    ladok, schedule = adapters(ladok_env, schema_env)
    st = ladok_env.state
    following.follow(store, ladok)  # start at the feed's head
    export(store, ladok, schedule)
    members = [a for a in st.antagningar.values() if a.tillstand == "ej_paborjad" and not a.tillfalle.installt
               and a.tillfalle.startperiod == "HT2027"]
    quitter, leaver = members[0], next(a for a in members[1:] if a.tillfalle is not members[0].tillfalle)
    st.aterbud(quitter.uid, quitter.tillfalle.start - dt.timedelta(days=2),
               "studiedeltagande.domain.aterbudsorsak.meddelat.av.studenten", None)
    st.registrera(leaver.uid, 1, leaver.tillfalle.start)
    st.avbrott(leaver.uid, leaver.tillfalle.start + dt.timedelta(days=3))
    assert leaver.avbrott.tidigt
    cancel = next(t for t in st.tillfallen.values() if not t.installt and t.startperiod == "HT2027"
                  and t.utbildning.typ == "kurs" and t is not quitter.tillfalle and t is not leaver.tillfalle)
    st.stall_in(cancel.uid)
    followed = following.follow(store, ladok)
    assert followed["marked"] >= 3
    summary, sent = export(store, ladok, schedule, mode="delta")
    assert summary["marked"] >= 3 and summary["instances"] == summary["marked"]
    memberships = held(schema_env, "medlemskap")
    assert f"{quitter.tillfalle.uid}:{quitter.student_uid}" not in memberships
    assert f"{leaver.tillfalle.uid}:{leaver.student_uid}" not in memberships
    assert held(schema_env, "utbildningstillfalle")[cancel.uid].active is False
    assert held(schema_env, "studentgrupp")[f"{cancel.uid}:grupp"].active is False
    # the counts moved with them
    assert held(schema_env, "utbildningstillfalle")[quitter.tillfalle.uid].fields["antal_aterbud"] == sum(
        a.tillstand == "aterbud" for a in st.by_tillfalle[quitter.tillfalle.uid])
    # a full run afterwards agrees with the delta; it only removes students left in no group
    # (a delta cannot know a student's other groups)
    again, _ = export(store, ladok, schedule)
    assert set(again["changes"]) <= {"delete.student"}
    in_groups = {m.partition(":")[2] for m in held(schema_env, "medlemskap")}
    assert set(held(schema_env, "student")) == in_groups


def test_crash_after_the_system_answered_loses_and_duplicates_nothing(store, ladok_env, schema_env):
    ladok, schedule = adapters(ladok_env, schema_env, batch=40)
    planning.plan(store, ladok, schedule, mode="full", scope=SCOPE)
    with store.transaction() as s:
        batches = len(s.scalars(select(OutboxMessage)).all())
    assert batches >= 2

    class Crash(Exception):
        pass

    calls = []

    def crash(rid):
        calls.append(rid)
        if len(calls) == 2:
            raise Crash(rid)

    with pytest.raises(Crash):
        sending.send(store, schedule, after_send=crash)
    applied = schema_env.state.stats["requests"]
    sending.send(store, schedule)  # the re-run: the same batch again (TimeEdit has no replay: applied again)
    assert schema_env.state.stats["requests"] == applied + batches - 1
    second = sum(len(json.loads(b)["objects"]) for b in schema_env.state.bodies[1:2])
    assert schema_env.state.stats["applied.unchanged"] == second  # the repeat changed nothing
    assert set(held(schema_env, "medlemskap")) == expected_members(ladok_env.state)
    with store.transaction() as s:
        assert not s.scalars(select(OutboxMessage).where(OutboxMessage.status != "sent")).all()
    summary, _ = export(store, ladok, schedule)
    assert summary["changes"] == {}


def test_a_rejected_object_is_quarantined_with_the_systems_reason_and_the_rest_goes_on(store, ladok_env, schema_env):
    ladok, schedule = adapters(ladok_env, schema_env)
    bad = next(t for t in ladok_env.state.tillfallen.values() if t.startperiod == "HT2027" and not t.installt)
    bad.utbildning.sv = ""  # Ladok gives no Swedish name: the system requires namn_sv
    summary, sent = export(store, ladok, schedule)
    assert sent["rejected"] >= 1
    with store.transaction() as s:
        q = s.scalars(select(Quarantine).where(Quarantine.kind == "schedule-object")).all()
    reasons = {x.message_id: x.reason for x in q}
    assert "namn_sv" in reasons[f"instance:{bad.uid}"]
    assert len(held(schema_env, "utbildningstillfalle")) == summary["instances"] - 1
    assert set(held(schema_env, "medlemskap")) >= {m for m in expected_members(ladok_env.state)
                                                  if not m.startswith(bad.uid)}
    again, _ = export(store, ladok, schedule)
    assert again["changes"] == {}  # not sent again until it changes in Ladok


def test_a_membership_in_use_is_deactivated_not_deleted(store, ladok_env, schema_env):
    ladok, schedule = adapters(ladok_env, schema_env)
    export(store, ladok, schedule)
    a = next(a for a in ladok_env.state.antagningar.values() if a.tillstand == "ej_paborjad"
             and not a.tillfalle.installt and a.tillfalle.startperiod == "HT2027")
    key = f"{a.tillfalle.uid}:{a.student_uid}"
    schema_env.state.book("medlemskap", key)
    ladok_env.state.aterbud(a.uid, a.tillfalle.start, "studiedeltagande.domain.aterbudsorsak.uteblev", None)
    _, sent = export(store, ladok, schedule)
    assert sent["deactivated_instead"] == 1
    sending.send(store, schedule)
    assert held(schema_env, "medlemskap")[key].active is False


def test_nightly_reconciliation_repairs_drift(store, ladok_env, schema_env):
    ladok, schedule = adapters(ladok_env, schema_env)
    export(store, ladok, schedule)
    st = schema_env.state
    some = next(iter(held(schema_env, "utbildningstillfalle")))
    st.objects[("utbildningstillfalle", some)].fields["namn_sv"] = "ändrat i schemat"
    lost = next(iter(held(schema_env, "student")))
    del st.objects[("student", lost)]
    plain, _ = export(store, ladok, schedule)
    assert plain["changes"] == {}  # without reconciliation nothing is seen
    summary, sent = export(store, ladok, schedule, reconcile=True)
    assert summary["drifted"] == 2
    assert st.objects[("utbildningstillfalle", some)].fields["namn_sv"] != "ändrat i schemat"
    assert ("student", lost) in st.objects


def test_dry_run_shows_what_would_change_and_changes_nothing(store, ladok_env, schema_env):
    ladok, schedule = adapters(ladok_env, schema_env)
    summary = planning.plan(store, ladok, schedule, mode="full", scope=SCOPE, dry_run=True)
    assert summary["changes"]["upsert.instance"] > 0 and summary["would_be_refused"] == {}
    assert schema_env.state.objects == {} and schema_env.state.stats["validated.201"] > 0
    with store.transaction() as s:
        assert not s.scalars(select(ScheduleObject)).all() and not s.scalars(select(OutboxMessage)).all()


def _lis_members(ladok_state):
    """The membershipRecord sourcedIds Ladok's state makes (student UID + instance UID)."""
    return {m.partition(":")[2] + m.partition(":")[0] for m in expected_members(ladok_state)}


def test_lis_records_go_one_message_each_to_a_real_amqp_broker(store, ladok_env, schema_env, amqp_queue):
    from brygga import xmlsafe
    from brygga.paths import SCHEMAS
    from tests.conftest import amqp_drain

    url, address = amqp_queue
    ladok = LadokAdapter(PeerConfig("ladok", ladok_env.url))
    schedule = ScheduleAdapter(PeerConfig("schema", url, login="guest", password="guest",
                                          extra={"format": "lis", "transport": "amqp", "address": address}))
    summary, sent = export(store, ladok, schedule)
    groups = summary["changes"]["upsert.group"]  # a student group has no record of its own in LIS
    assert sent.get("rejected", 0) == 0 and sent["sent"] == summary["enqueued"] == summary["objects"] - groups
    got = amqp_drain(url, address)
    assert len(got) == summary["enqueued"]
    by_type: dict[str, dict[str, etree._Element]] = {}
    for m in got:
        rec = xmlsafe.fromstring(bytes(m.body))
        tag = etree.QName(rec).localname
        xsd = {"courseOfferingRecord": "imscms_v1p0", "personRecord": "imspms_v2p0",
               "membershipRecord": "imsmms_v2p0"}[tag]
        xmlsafe.load_schema(SCHEMAS / "schema" / "lis2" / f"{xsd}.xsd").assertValid(rec)
        assert m.properties["RecordType"] == tag and m.properties["OriginEvent"]
        assert m.content_type == "application/xml" and m.durable
        by_type.setdefault(tag, {})[rec.findtext("{*}sourcedGUID/{*}sourcedId")] = rec
    assert set(by_type["membershipRecord"]) == _lis_members(ladok_env.state)
    registered = next(a for a in ladok_env.state.antagningar.values() if a.tillstand == "registrerad"
                      and a.tillfalle.startperiod == "HT2027" and not a.tillfalle.installt)
    rec = by_type["membershipRecord"][registered.student_uid + registered.tillfalle.uid]
    assert rec.findtext(".//{*}role/{*}status") == "Active"
    ext = {f.findtext("{*}fieldName"): f.findtext("{*}fieldValue") for f in rec.iter("{*}extensionField")}
    assert ext == {"Admitted": "true", "Registered": "true", "OriginEvent": "LADOK.AddRegistration"}
    protected = next(s for s in ladok_env.state.students.values() if s.skyddad
                     and s.uid in by_type["personRecord"])
    person = by_type["personRecord"][protected.uid]
    assert person.find(".//{*}name") is None and person.find(".//{*}contactinfo") is None
    assert protected.efternamn.encode() not in etree.tostring(person)

    # an återbud: the membership goes out Inactive (LIS has no delete)
    a = next(a for a in ladok_env.state.antagningar.values() if a.tillstand == "ej_paborjad"
             and not a.tillfalle.installt and a.tillfalle.startperiod == "HT2027")
    ladok_env.state.aterbud(a.uid, a.tillfalle.start, "studiedeltagande.domain.aterbudsorsak.uteblev", None)
    export(store, ladok, schedule)
    again = {xmlsafe.fromstring(bytes(m.body)).findtext("{*}sourcedGUID/{*}sourcedId"): m for m in amqp_drain(url, address)}
    ended = xmlsafe.fromstring(bytes(again[a.student_uid + a.tillfalle.uid].body))
    assert ended.findtext(".//{*}role/{*}status") == "Inactive"
    assert again[a.student_uid + a.tillfalle.uid].properties["OriginEvent"] == "BRYGGA.EndMembership"


def test_lis_over_amqp_with_no_broker_is_retried_and_loses_nothing(store, ladok_env, schema_env):
    ladok = LadokAdapter(PeerConfig("ladok", ladok_env.url))
    schedule = ScheduleAdapter(PeerConfig("schema", "amqp://127.0.0.1:9", extra={
        "format": "lis", "transport": "amqp", "timeout": 5}))
    planning.plan(store, ladok, schedule, mode="full", scope=SCOPE)
    with pytest.raises(PeerError) as e:
        sending.send(store, schedule)
    assert e.value.transient
    with store.transaction() as s:
        assert {m.status for m in s.scalars(select(OutboxMessage))} <= {"pending", "failed"}


def test_lis_http_form_and_a_record_the_xsd_refuses(store, ladok_env, schema_env):
    from brygga import xmlsafe
    from brygga.paths import SCHEMAS

    ladok, schedule = adapters(ladok_env, schema_env, "lis", transport="http")
    bad = next(t for t in ladok_env.state.tillfallen.values() if t.startperiod == "HT2027" and not t.installt
               and t.utbildning.typ == "kurs")
    bad.utbildning.omfattning = "7,5 hp"  # not a decimal: LIS's defaultCredits refuses it; the rest goes
    summary, sent = export(store, ladok, schedule)
    assert summary["refused"] == 1 and sent.get("rejected", 0) == 0
    xsd = xmlsafe.load_schema(SCHEMAS / "schema" / "lis2" / "records.xsd")
    docs = [xmlsafe.fromstring(b) for b in schema_env.state.bodies]
    assert docs and all(xsd.validate(d) for d in docs)
    lis = schema_env.state.lis
    assert {k.partition(":")[2] for k in lis if k.startswith("membershipRecord:")} == _lis_members(ladok_env.state)
    assert f"courseOfferingRecord:{bad.uid}" not in lis and len(
        [k for k in lis if k.startswith("courseOfferingRecord:")]) == summary["instances"] - 1
    with store.transaction() as s:
        (q,) = s.scalars(select(Quarantine).where(Quarantine.kind == "schedule-object")).all()
    assert q.message_id == f"instance:{bad.uid}" and "defaultCredits" in q.reason


def test_oneroster_package_keeps_the_csv_rules(store, ladok_env, schema_env, tmp_path):
    ladok, schedule = adapters(ladok_env, schema_env, "oneroster", directory=str(tmp_path))
    export(store, ladok, schedule)
    packages = sorted(tmp_path.glob("*.zip"))
    assert len(packages) == 1 and not list(tmp_path.glob(".incoming-*"))
    data = packages[0].read_bytes()
    assert oneroster.check(data) == []
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        assert {"manifest.csv", "orgs.csv", "academicSessions.csv", "courses.csv", "classes.csv", "users.csv",
                "enrollments.csv"} <= set(z.namelist())
        users = z.read("users.csv").decode()
        enrollments = z.read("enrollments.csv").decode()
    protected = next(s for s in ladok_env.state.students.values() if s.skyddad)
    line = next(x for x in users.splitlines() if x.startswith(protected.uid))
    assert protected.epost not in users and f",{protected.efternamn}," not in line and "Skyddad,identitet" in line
    assert enrollments.count("\r\n") - 1 == len(expected_members(ladok_env.state))
    # an ended membership goes out as tobedeleted in the next (delta) package
    a = next(a for a in ladok_env.state.antagningar.values() if a.tillstand == "ej_paborjad"
             and not a.tillfalle.installt and a.tillfalle.startperiod == "HT2027")
    ladok_env.state.aterbud(a.uid, a.tillfalle.start, "studiedeltagande.domain.aterbudsorsak.uteblev", None)
    export(store, ladok, schedule)
    newest = max(tmp_path.glob("*.zip"), key=lambda p: p.stat().st_mtime_ns)
    assert oneroster.check(newest.read_bytes()) == []
    with zipfile.ZipFile(newest) as z:
        rows = z.read("enrollments.csv").decode()
    assert f"{a.tillfalle.uid}:{a.student_uid},tobedeleted," in rows


def test_chunked_full_runs_agree_and_an_instance_leaving_the_term_ends(store, ladok_env, schema_env):
    ladok, schedule = adapters(ladok_env, schema_env)
    summary = planning.plan(store, ladok, schedule, mode="full", scope=SCOPE, chunk=3)  # several chunks
    sending.send(store, schedule)
    assert set(held(schema_env, "medlemskap")) == expected_members(ladok_env.state)
    students = {m.partition(":")[2] for m in held(schema_env, "medlemskap")}
    assert set(held(schema_env, "student")) == students  # each student once, whatever chunk it was met in
    assert summary["objects"] == len(schema_env.state.objects)
    again, _ = export(store, ladok, schedule)  # one chunk this time: the same objects
    assert again["changes"] == {}
    moved = next(t for t in ladok_env.state.tillfallen.values() if t.startperiod == "HT2027" and not t.installt
                 and ladok_env.state.by_tillfalle.get(t.uid) and t.utbildning.typ == "kurs")
    orgs = schema_env.state.objects[("utbildningstillfalle", moved.uid)].organizations
    assert orgs and orgs != ("brygga",)  # its unit's, not the default organization
    moved.start = dt.date(2028, 1, 17)  # now a VT2028 instance: out of the exported term
    summary, _ = export(store, ladok, schedule, chunk=4)
    assert summary["changes"]["deactivate.instance"] == 1 and summary["changes"]["delete.membership"] >= 1
    assert held(schema_env, "utbildningstillfalle")[moved.uid].active is False
    # a deactivation names no fields and no organizations (PATCH): the object stays its unit's
    assert schema_env.state.objects[("utbildningstillfalle", moved.uid)].organizations == orgs
    assert not [m for m in held(schema_env, "medlemskap") if m.startswith(moved.uid)]


def test_a_crash_between_chunks_of_a_full_run_loses_and_duplicates_nothing(store, ladok_env, schema_env, monkeypatch):
    ladok, schedule = adapters(ladok_env, schema_env)
    with pytest.raises(ConnectionError), killed_on_read(monkeypatch, 3):
        planning.plan(store, ladok, schedule, mode="full", scope=SCOPE, chunk=3)
    first = {(o[0], o[1]) for _, o, _ in batch_objects(store)}
    assert first  # the chunks before the crash are committed
    summary, sent = export(store, ladok, schedule, chunk=3)  # the re-run
    objs = [(o[0], o[1]) for _, o, _ in batch_objects(store)]
    assert len(objs) == len(set(objs)) and first <= set(objs)  # every object once
    assert sent["sent"] == len(objs) == len(schema_env.state.objects)
    assert set(held(schema_env, "medlemskap")) == expected_members(ladok_env.state)


def test_a_plan_killed_between_chunks_ends_as_a_fresh_full_export(store, ladok_env, schema_env, tmp_path):
    """kill -9 of a planning process after its second chunk's transaction, before the third: the
    re-run's outbox and the system end as a fresh full export's, every object sent once."""
    ROOT = Path(__file__).resolve().parents[2]
    child = textwrap.dedent(f"""
        import time
        from adapters.ladok import LadokAdapter
        from adapters.schema import ScheduleAdapter
        from brygga.connections import PeerConfig
        from brygga.flows.schedule import planning
        from brygga.store import Store
        def after_chunk(n):
            print("committed", n, flush=True)
            if n == 2:
                time.sleep(60)  # parked between chunk 2 and 3: the parent kills us here
        planning.plan(Store({store.url!r}), LadokAdapter(PeerConfig("ladok", {ladok_env.url!r})),
                      ScheduleAdapter(PeerConfig("schema", {schema_env.url!r}, password="sim-api-key",
                                                 extra={{"format": "timeedit", **{TIMEEDIT!r}}})),
                      mode="full", scope=planning.Scope(("HT2027",)), chunk=3, after_chunk=after_chunk)
        print("finished", flush=True)
    """)
    proc = subprocess.Popen([sys.executable, "-c", child], cwd=ROOT, stdout=subprocess.PIPE, text=True,
                            stderr=subprocess.STDOUT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    lines = []
    try:
        for line in proc.stdout:
            lines.append(line.split())
            if lines[-1] == ["committed", "2"]:
                proc.send_signal(signal.SIGKILL)
                break
    finally:
        proc.wait(10)
    assert proc.returncode == -signal.SIGKILL, lines
    half = {(o[0], o[1]) for _, o, _ in batch_objects(store)}
    assert half
    ladok, schedule = adapters(ladok_env, schema_env)
    summary, sent = export(store, ladok, schedule, chunk=3)  # the re-run
    objs = [(o[0], o[1]) for _, o, _ in batch_objects(store)]
    assert len(objs) == len(set(objs)) and half <= set(objs)
    fresh = fresh_export(ladok_env, tmp_path)
    assert held_state(schema_env.state) == held_state(fresh)
    assert len(objs) == len(fresh.objects) == sent["sent"]  # every object sent once


def _kinds(schema_env, typ, active=True):
    return {ext for ext, o in held(schema_env, typ).items() if o.active is active}


def test_a_full_run_of_one_term_or_unit_ends_nothing_outside_its_scope(store, ladok_env, schema_env):
    ladok, schedule = adapters(ladok_env, schema_env, removal_guard_share=1)  # one unit's scope is small
    st = ladok_env.state
    courses = [t for t in st.tillfallen.values() if t.startperiod == "HT2027" and not t.installt
               and t.utbildning.typ == "kurs" and st.by_tillfalle.get(t.uid)]
    spring = courses[:2]
    for t in spring:
        st.flytta_tillfalle(t.uid, dt.date(2028, 1, 17))  # VT2028
    both = Scope(("HT2027", "VT2028"))
    planning.plan(store, ladok, schedule, mode="full", scope=both)
    sending.send(store, schedule)
    before = {typ: _kinds(schema_env, typ) for typ in ("utbildningstillfalle", "studentgrupp", "medlemskap", "student")}
    assert {t.uid for t in spring} <= before["utbildningstillfalle"]
    # a hand-started full run of VT2028 only: the autumn's objects and students stay
    only_spring = planning.plan(store, ladok, schedule, mode="full", scope=Scope(("VT2028",)))
    sending.send(store, schedule)
    assert only_spring["changes"] == {}
    assert {typ: _kinds(schema_env, typ) for typ in before} == before
    # one organisation unit: the other units' instances stay, and so do their students
    unit = st.tillfallen[spring[0].uid].organisationsenhet
    one_unit = planning.plan(store, ladok, schedule, mode="full", scope=Scope(("HT2027", "VT2028"), unit))
    sending.send(store, schedule)
    assert one_unit["changes"] == {} and one_unit["instances"] < len(before["utbildningstillfalle"])
    assert {typ: _kinds(schema_env, typ) for typ in before} == before
    # an instance of that unit that moves to another unit has left the unit's scope: it ends there
    spring[0].organisation = "ZZ-ANNAN"
    moved = planning.plan(store, ladok, schedule, mode="full", scope=Scope(("HT2027", "VT2028"), unit))
    sending.send(store, schedule)
    assert moved["changes"]["deactivate.instance"] == 1
    assert spring[0].uid in _kinds(schema_env, "utbildningstillfalle", active=False)
    # the whole scope again brings it back under its new unit
    planning.plan(store, ladok, schedule, mode="full", scope=both)
    sending.send(store, schedule)
    assert {typ: _kinds(schema_env, typ) for typ in before} == before


def test_an_older_version_retried_after_a_newer_one_is_never_sent(store, ladok_env, schema_env):
    ladok, schedule = adapters(ladok_env, schema_env)
    export(store, ladok, schedule)
    st = ladok_env.state
    person = next(s for s in st.students.values() if not s.skyddad and s.uid in _kinds(schema_env, "student"))
    person.fornamn = "Ändrat"
    planning.plan(store, ladok, schedule, mode="full", scope=SCOPE)  # v2: the new name, not yet sent
    person.skyddad = True  # then protected: v3 is the UID only, and v2 (not sent yet) is taken out of its batch
    planning.plan(store, ladok, schedule, mode="full", scope=SCOPE)
    mine = {o[3]: (status, x) for status, o, x in batch_objects(store) if o[1] == person.uid and status != "cancelled"}
    assert set(mine) == {1, 3} and mine[3][0] == "pending"  # v2 is in no batch to be sent any more
    with store.transaction() as s:
        cancelled = s.scalars(select(OutboxMessage).where(OutboxMessage.status == "cancelled")).all()
    assert [m.response for m in cancelled] == ["superseded by a later version"]  # v2's batch held only v2
    schema_env.state.bodies.clear()
    sending.send(store, schedule)
    wire = b"".join(schema_env.state.bodies)
    assert person.uid.encode() in wire and b"\xc3\x84ndrat" not in wire and person.efternamn.encode() not in wire
    assert held(schema_env, "student")[person.uid].fields == {"skyddad": True}


def test_reconciliation_does_not_send_again_what_is_still_in_the_outbox(store, ladok_env, schema_env):
    ladok, schedule = adapters(ladok_env, schema_env)
    first = planning.plan(store, ladok, schedule, mode="full", scope=SCOPE)  # not sent yet
    summary = planning.plan(store, ladok, schedule, mode="full", scope=SCOPE, reconcile=True)
    assert summary["drifted"] == 0 and summary["changes"] == {}
    sent = sending.send(store, schedule)
    assert sent["sent"] == first["enqueued"] == len(schema_env.state.objects)


def test_a_first_export_that_crashed_is_finished_as_a_full_one(store, ladok_env, schema_env, monkeypatch):
    ladok, schedule = adapters(ladok_env, schema_env)
    with pytest.raises(ConnectionError), killed_on_read(monkeypatch, 2):
        planning.plan(store, ladok, schedule, mode="delta", scope=SCOPE, chunk=3)
    summary, _ = export(store, ladok, schedule, mode="delta")  # rows exist, but no full export finished
    assert summary["mode"] == "full"
    assert set(held(schema_env, "medlemskap")) == expected_members(ladok_env.state)
    again, _ = export(store, ladok, schedule, mode="delta")
    assert again["mode"] == "delta"


def test_unreadable_ladok_data_is_quarantined_once_and_what_it_held_stays(store, ladok_env, schema_env):
    ladok, schedule = adapters(ladok_env, schema_env)
    export(store, ladok, schedule)
    st = ladok_env.state
    members = _kinds(schema_env, "medlemskap")
    bad_instance = next(t for t in st.tillfallen.values() if t.startperiod == "HT2027" and not t.installt
                        and st.by_tillfalle.get(t.uid))
    bad_instance.organisation = "O" * 100  # breaks the 64-character bound
    other = next(t for t in st.tillfallen.values() if t.startperiod == "HT2027" and not t.installt
                 and t is not bad_instance and st.by_tillfalle.get(t.uid))
    a = next(a for a in st.by_tillfalle[other.uid] if a.tillstand in ("ej_paborjad", "registrerad"))
    st.students[a.student_uid].fornamn = "N" * 150  # a participant Ladok sends that breaks the rules
    for _ in range(2):
        summary, sent = export(store, ladok, schedule)
        assert summary["invalid"] >= 2 and not summary["changes"].get("delete.membership")
        assert not summary["changes"].get("deactivate.instance")
    assert _kinds(schema_env, "medlemskap") == members  # nothing of theirs ended
    with store.transaction() as s:
        q = {(x.kind, x.message_id): x.attempts for x in s.scalars(select(Quarantine).where(Quarantine.source == "ladok"))}
    assert q[("schedule-instance", bad_instance.uid)] == 2  # one row, met twice
    assert any(k == "schedule-participant" and n == 2 for (k, _), n in q.items())


def test_the_nightly_reconciliation_is_due_once_a_night_even_after_a_missed_two_oclock(store):
    import zoneinfo

    tz = zoneinfo.ZoneInfo("Europe/Stockholm")

    def at(day, hh, mm):
        return dt.datetime(2027, 10, day, hh, mm, tzinfo=tz).astimezone(dt.UTC)

    assert not planning.reconcile_due(store, "timeedit", at(5, 1, 55), tz)  # before 02:00
    assert planning.reconcile_due(store, "timeedit", at(5, 2, 0), tz)  # never reconciled
    with store.transaction() as s:
        planning.ops.setting_set(s, planning._RECONCILED + "timeedit", at(5, 2, 0).isoformat(), "test")
    assert not planning.reconcile_due(store, "timeedit", at(5, 2, 5), tz)  # done tonight
    assert not planning.reconcile_due(store, "timeedit", at(5, 23, 0), tz)
    assert planning.reconcile_due(store, "timeedit", at(6, 3, 40), tz)  # 02:00 was missed: still tonight
    assert not planning.reconcile_due(store, "lis", at(5, 1, 0), tz) and planning.reconcile_due(store, "lis", at(5, 2, 0), tz)
    # the night the clocks go back (2027-10-31): one 02:00 run, not two
    with store.transaction() as s:
        planning.ops.setting_set(s, planning._RECONCILED + "timeedit", at(31, 2, 1).isoformat(), "test")
    again = dt.datetime(2027, 10, 31, 2, 30, fold=1, tzinfo=tz).astimezone(dt.UTC)  # the second 02:30
    assert not planning.reconcile_due(store, "timeedit", again, tz)


def test_unreadable_contact_details_go_out_without_an_address_and_are_asked_again(store, ladok_env, schema_env,
                                                                                   monkeypatch):
    from brygga import xmlsafe

    ladok, schedule = adapters(ladok_env, schema_env)
    st = ladok_env.state
    person = next(s for (a, s) in ((a, st.students[a.student_uid]) for a in st.antagningar.values())
                  if not s.skyddad and s.epost and a.tillstand in ("ej_paborjad", "registrerad")
                  and a.tillfalle.startperiod == "HT2027" and not a.tillfalle.installt)
    real = ladok.deltagare.read_email

    def read_email(body):
        if person.uid.encode() in body:
            raise xmlsafe.MalformedXML("not well-formed (invalid token): line 1, column 40")
        return real(body)

    monkeypatch.setattr(ladok.deltagare, "read_email", read_email)
    summary, _ = export(store, ladok, schedule)
    assert summary["invalid"] == 1
    student = held(schema_env, "student")[person.uid].fields
    assert student["fornamn"] == person.fornamn and student.get("epost") is None
    with store.transaction() as s:
        (row,) = s.scalars(select(Quarantine).where(Quarantine.kind == "schedule-contact")).all()
    assert row.message_id == person.uid and "invalid token" in row.reason and "without an e-mail" in row.reason
    monkeypatch.setattr(ladok.deltagare, "read_email", real)  # Ladok's reply is readable again
    again, _ = export(store, ladok, schedule)
    assert again["email_lookups"] == 1 and held(schema_env, "student")[person.uid].fields["epost"] == person.epost


def test_a_sender_beside_a_full_run_sends_each_chunk_while_the_next_is_read(store, ladok_env, schema_env, tmp_path):
    """The chunks committed are delivered while the run is still reading (the run waits after its
    first chunk until the system has it); when the run ends, the sender sends what is left and
    stops, and the system ends as a fresh full export's."""
    import threading

    ladok, schedule = adapters(ladok_env, schema_env)
    seen_mid_run: list[int] = []

    def after_chunk(n):
        if n == 1:  # parked until the sender beside us delivered this chunk
            for _ in range(200):
                if schema_env.state.objects:
                    break
                threading.Event().wait(0.05)
            seen_mid_run.append(len(schema_env.state.objects))

    result: dict = {}
    sender = threading.Thread(target=lambda: result.update(
        sending.send_beside(store, schedule, run_id="run-1", poll=0.05, start_wait=20)))
    sender.start()
    planned = planning.plan(store, ladok, schedule, mode="full", scope=SCOPE, chunk=3, run_id="run-1",
                            after_chunk=after_chunk)
    sender.join(30)
    assert not sender.is_alive()
    assert seen_mid_run and seen_mid_run[0] > 0  # chunk 1 reached the system before chunk 2 was read
    assert result["sent"] == planned["enqueued"] == len(schema_env.state.objects)
    assert sending.send(store, schedule)["requests"] == 0  # nothing left behind
    assert planning.planning_state(store, schedule.target).done

    assert held_state(schema_env.state) == held_state(fresh_export(ladok_env, tmp_path))


def test_a_sender_beside_stops_when_its_run_failed_or_never_began(store, ladok_env, schema_env):
    """A run that failed marks itself done (the sender sends what it committed and stops at once);
    with no run at all the sender stops after start_wait."""
    ladok, schedule = adapters(ladok_env, schema_env, terms=[])
    with pytest.raises(planning.NotConfigured):
        planning.run(store, ladok, schedule, mode="full", terms=[], run_id="run-2")  # no term anywhere
    t = [0.0]
    got = sending.send_beside(store, schedule, run_id="run-2", poll=0, start_wait=3600,
                              clock=lambda: t[0], sleep=lambda _s: None)
    assert got == {"requests": 0}
    ticks = iter(range(0, 100, 10))
    got = sending.send_beside(store, schedule, run_id="run-never", poll=1, start_wait=30,
                              clock=lambda: float(next(ticks)), sleep=lambda _s: None)
    assert got == {"requests": 0}
