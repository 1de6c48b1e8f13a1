"""Admission import NyA → Ladok, the fetch (``fetching.py``): NyA's stream read into the store, bad
records set aside, unreadable replies. Against the simulators over HTTP, on both stores (the world:
``tests/flows/admissions_world.py``)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from adapters.nya import NyaAdapter
from brygga.connections import PeerConfig
from brygga.flows import admissions
from brygga.store.models import (
    AuditLog,
    FeedCheckpoint,
    NyaAdmission,
    Quarantine,
    UnhandledAdmission,
)
from simulators._server import serve_in_thread
from tests.flows.admissions_world import (
    ROUND,
    _admission_of,
    _ladok_admission,
    _queue,
    _run,
    make_world,
    world,  # noqa: F401 - the fixture
)


def test_aterbud_before_placement_is_never_placed(store, world):
    w = world
    (a_c,) = _admission_of(w, "c")
    w["N"].register_aterbud(ROUND, admission_id=a_c.admission_id)
    _run(store, w)
    assert _ladok_admission(w, a_c.admission_id) is None
    with store.transaction() as s:
        assert s.get(NyaAdmission, a_c.admission_id).state == "declined"
        assert s.scalar(select(func.count()).select_from(NyaAdmission).where(NyaAdmission.state == "placed")) == 5


def test_unreadable_records_without_an_id_or_too_long_never_block_the_round(store):
    """Two records without AdmissionId, a duplicated id and one the mapping found bad in one chunk:
    the two without an id only quarantined, the bad one queued, the good admission stored (on
    PostgreSQL too, where VARCHAR lengths are enforced). Over-long values are the mapping's to
    refuse (test_hostile_batch_has_the_same_outcome_on_both_stores)."""
    from brygga.records import Admission
    from mappings.base import RecordError

    def adm(aid, kod="TDA100"):
        return Admission(aid, 5, ROUND, "199001011239", "A", "B", "o1", kod, "11001", False, True, True, False)

    batch = [RecordError("sequence:3", "AdmissionId", "required field missing", "Admission", has_id=False),
             RecordError("sequence:4", "AdmissionId", "required field missing", "Admission", has_id=False),
             adm("HT2027-A1"), adm("HT2027-A1"),
             RecordError("HT2027-A2", "Utbildningskod", "longer than 20 characters", "Admission")]
    counts = {"read": 0, "new": 0, "updated": 0, "invalid": 0, "declined": 0}
    with store.transaction() as s:
        admissions.fetching.store_admissions(s, ROUND, batch, counts)
    assert counts["new"] == 1 and counts["invalid"] == 3
    with store.transaction() as s:
        assert {r.admission_id: r.state for r in s.scalars(select(NyaAdmission))} == {
            "HT2027-A1": "pending", "HT2027-A2": "invalid"}  # never stored under "sequence:3"
        assert sorted(s.scalars(select(Quarantine.message_id))) == ["HT2027-A2", "sequence:3", "sequence:4"]
        assert list(s.scalars(select(UnhandledAdmission.nya_admission_id))) == ["HT2027-A2"]


def _hostile(w) -> list[str]:
    """Admissions as a broken NyA might send them, beside the world's good ones."""
    t1 = w["t"]["t1"]
    person = w["p"]["c"].personnummer
    good = {"Round": ROUND, "Personnummer": person, "GivenName": "Ada", "FamilyName": "Berg", "OfferId": t1.uid,
            "Utbildningskod": "TDA100", "Tillfalleskod": "11001", "ProgrammeInternal": "false", "Admitted": "true",
            "Accepted": "true", "FeeLiable": "false"}

    def adm(aid, extra="", **fields):
        values = {**good, **fields}
        body = "".join(f"<{k}>{v}</{k}>" for k, v in values.items() if v is not None)
        head = f"<AdmissionId>{aid}</AdmissionId>" if aid is not None else ""
        return f"<Admission>{head}<Sequence>{{sequence}}</Sequence>{body}{extra}</Admission>"

    def aterbud(date):
        return f"<Aterbud><AterbudId>AB-9</AterbudId><Date>{date}</Date><Origin>applicant</Origin></Aterbud>"

    return [
        adm("HT2027-H1", aterbud("2027-08-01+02:00")),  # valid (xs:date with a zone): a calendar day
        adm("HT2027-H2", Round=ROUND + "X" * 40),
        adm("H" * 200),
        adm(None),
        adm("HT2027-H5", aterbud("2027-02-30")),
        adm("HT2027-H6", GivenName="Å" * 400),
        adm("HT2027-H7", Utbildningskod="TDA" * 14),
        adm("HT2027-H8", "<Condition><Code>" + "K" * 30 + "</Code><Text>t</Text><Lifted>false</Lifted></Condition>"),
        adm("HT2027-H9", Personnummer=person[:-1] + str((int(person[-1]) + 1) % 10)),
        adm("HT2027-H10", Round="VT2028"),
        adm("HT2027-H11", aterbud("not-a-date")),
    ]


def _outcome(store):
    with store.transaction() as s:
        states = {r.admission_id: (r.state, r.aterbud_date) for r in s.scalars(select(NyaAdmission))}
        queue = {u.nya_admission_id: (u.hinder, u.reason) for u in s.scalars(select(UnhandledAdmission))}
        quarantine = sorted((q.message_id, q.reason) for q in s.scalars(select(Quarantine)))
    return states, queue, quarantine


def test_hostile_batch_has_the_same_outcome_on_both_stores(empty_store_factory):
    """The same hostile GetAdmissions reply, fetched and placed on SQLite and on PostgreSQL (where
    VARCHAR lengths are enforced): every bad record quarantined with its reason, queued only under
    a usable AdmissionId, and every good admission handled exactly as in a run without them."""
    from brygga.store import migrate

    outcomes, counts = {}, {}
    for backend in ("clean", "sqlite", "postgresql"):
        store = empty_store_factory("sqlite" if backend == "clean" else backend)
        migrate.upgrade(store)
        with make_world() as w:
            if backend != "clean":
                w["N"].add_raw_admissions(ROUND, _hostile(w))
            counts[backend], _ = _run(store, w)
            admissions.sync_conditions(store, w["nya"], w["ladok"], ROUND)
            outcomes[backend] = _outcome(store)
    assert outcomes["sqlite"] == outcomes["postgresql"] and counts["sqlite"] == counts["postgresql"]
    states, queue, quarantine = outcomes["postgresql"]
    clean_states, clean_queue, _ = outcomes["clean"]
    assert {k: v for k, v in states.items() if "-H" not in k} == clean_states  # the rest of the batch went on
    assert {k: v for k, v in queue.items() if "-H" not in k} == clean_queue
    assert states["HT2027-H1"] == ("declined", "2027-08-01")
    bad = {f"HT2027-H{n}" for n in (2, 5, 6, 7, 8, 9, 10, 11)}
    assert {k for k, v in states.items() if k.startswith("HT2027-H")} == bad | {"HT2027-H1"}
    assert all(states[k] == ("invalid", None) for k in bad)
    assert {k: v[0] for k, v in queue.items() if k in bad} == {
        **{k: "ogiltig.antagning" for k in bad}, "HT2027-H9": "personnummer.ogiltigt"}
    reasons = dict(quarantine)
    assert "Round" in reasons["HT2027-H2"] and "Aterbud/Date" in reasons["HT2027-H5"]
    assert "longer than 300" in reasons["HT2027-H6"] and "longer than 20" in reasons["HT2027-H7"]
    assert "VT2028 in a reply for HT2027" in reasons["HT2027-H10"]
    no_id = [m for m, _ in quarantine if not m.startswith("HT2027-")]
    assert len(no_id) == 2 and any(m.startswith("sequence:") for m in no_id)
    assert all(len(m) <= 100 for m in no_id) and not any(m in states for m in no_id)  # quarantined only
    assert counts["postgresql"]["invalid"] == counts["clean"]["invalid"] + 10


def test_an_admission_corrected_in_nya_leaves_the_queue_and_is_placed(store, world):
    w = world
    _run(store, w)
    (a_bad,) = _admission_of(w, "invalid")
    assert _queue(store)[a_bad.admission_id].status == "open"
    rs = w["N"].rounds[ROUND]
    adm = rs.admissions[a_bad.admission_id]
    good = w["p"]["e"].personnummer  # NyA corrects the number (to a student in Ladok)
    rs.applicants[good] = rs.applicants.pop(adm.personnummer)
    adm.personnummer = good
    w["N"]._touch(rs, adm)
    counts, placed = _run(store, w)
    assert counts["updated"] == 1 and placed["placed"] == 1
    u = _queue(store)[a_bad.admission_id]
    assert (u.status, u.resolution) == ("resolved", "rättad i NyA")


def test_an_unreadable_reply_keeps_what_came_before_and_waits_for_an_operator(store, world, capsys):
    """A control character in one admission of NyA's reply: the admissions before it are stored,
    the round's checkpoint moves to just after the last good one, the reply is quarantined with
    its position and the parser's message (each run counted), and the fetch fails without ever
    moving past it; an operator moves past it (audited) and the admissions after it are read."""
    from adapters.http import UnreadableReply
    from brygga import cli
    from brygga.store import ops

    w = world
    good_before = len(list(w["N"].admissions_since(ROUND, 0, only_accepted=True)[1]))
    (bad_seq,) = w["N"].add_raw_admissions(ROUND, ["<Admission><AdmissionId>HT2027-X1</AdmissionId>"
                                                   "<Sequence>{sequence}</Sequence><GivenName>\x01</GivenName>"
                                                   "</Admission>"])
    after = w["N"].accept(ROUND, w["p"]["late"].personnummer)  # a later change: sequence after the bad one
    assert after and after[0].sequence > bad_seq
    name = admissions.fetching.checkpoint_name(ROUND)
    for attempt in (1, 2):
        with pytest.raises(UnreadableReply) as e:
            admissions.fetch(store, w["nya"], ROUND)
        assert "GetAdmissions" in str(e.value) and "not well-formed" in str(e.value) and e.value.transient
        with store.transaction() as s:
            assert s.scalar(select(func.count()).select_from(NyaAdmission)) == good_before
            assert ops.checkpoint_get(s, name).page == bad_seq  # just after the last good admission
            (q,) = s.scalars(select(Quarantine).where(Quarantine.kind == "GetAdmissions-reply"))
            assert (q.attempts, q.message_id) == (attempt, f"{name}:{bad_seq}")
            assert "brygga checkpoints set" in q.reason and "line" in q.reason
    url = str(store.engine.url.render_as_string(hide_password=False))
    assert cli.main(["checkpoints", "set", name, str(bad_seq + 1), "--reason", "NyA ärende 4711", "--actor", "ops",
                     "--url", url]) == 0
    counts = admissions.fetch(store, w["nya"], ROUND)
    assert counts["new"] == 1
    with store.transaction() as s:
        assert s.get(NyaAdmission, after[0].admission_id).state == "pending"
        audit = s.scalars(select(AuditLog).where(AuditLog.action == "checkpoint.set")).one()
        assert (audit.actor, audit.detail["before"]["position"], audit.detail["reason"]) == ("ops", bad_seq,
                                                                                           "NyA ärende 4711")
    assert cli.main(["quarantine", "list", "--url", url]) == 0
    assert "GetAdmissions-reply" in capsys.readouterr().out


def test_another_operations_reply_is_an_error_naming_peer_and_operation(store):
    """NyA answers GetAdmissions with a GetAterbudResponse: not 0 admissions and a moved checkpoint,
    but an error naming the peer and the operation; nothing is stored."""
    from starlette.applications import Starlette
    from starlette.responses import Response
    from starlette.routing import Route

    from adapters.http import UnreadableReply

    body = (b'<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>'
            b'<GetAterbudResponse xmlns="urn:brygga:nya:1"><Round>HT2027</Round><NextSequence>999</NextSequence>'
            b"</GetAterbudResponse></soap:Body></soap:Envelope>")

    async def soap(request):
        return Response(body, media_type="text/xml")

    with serve_in_thread(Starlette(routes=[Route("/nya/soap", soap, methods=["POST"])])) as srv:
        with pytest.raises(UnreadableReply) as e:
            admissions.fetch(store, NyaAdapter(PeerConfig("nya", srv.url)), ROUND)
    assert str(e.value).startswith("nya: GetAdmissions: unreadable reply") and not e.value.transient
    assert "GetAdmissionsResponse" in str(e.value)
    with store.transaction() as s:
        assert s.scalar(select(func.count()).select_from(NyaAdmission)) == 0
        cp = s.get(FeedCheckpoint, admissions.fetching.checkpoint_name(ROUND))
        assert cp is None or cp.page != 999


def test_a_replay_of_the_admission_stream_from_a_time_reads_what_was_lost_and_places_it_once(store, world):
    """A late acceptance after 14:00 was skipped (the stream's checkpoint moved past it by hand); a
    replay of nya-admissions:<round> from 14:00 puts the stream back where it stood then (its
    history), the dry run says so, and the next run reads and places exactly that admission — the
    ones read before are held and placed once. A time before any history reads from the start."""
    import datetime as dt
    import time

    from brygga.flows import checkpoints
    from brygga.store.models import AuditLog, NyaAdmission

    w = world
    name = admissions.checkpoint_name(ROUND)
    _run(store, w)
    placed_before = _placed(store)
    time.sleep(0.05)
    since = dt.datetime.now(dt.UTC)
    time.sleep(0.05)
    (late,) = w["N"].accept(ROUND, w["p"]["late"].personnummer)
    nxt = w["N"].rounds[ROUND].admissions[late.admission_id].sequence + 1
    checkpoints.set_position(store, name, nxt, actor="anna", reason="moved past (the admission after it is lost)")
    assert _run(store, w)[0].get("new", 0) == 0

    plan = checkpoints.replay_sequence_since(store, name, since, actor="anna", reason="lost", dry_run=True)
    assert plan["current"] == nxt and plan["position"] < nxt and not plan["from_start"]
    assert plan["held_from_there"] == 0  # Brygga holds nothing from there: all of it comes again
    assert checkpoints.replay_sequence_since(store, name, since - dt.timedelta(days=1), actor="a", reason="x",
                                             dry_run=True)["from_start"]
    done = checkpoints.replay_sequence_since(store, name, since.astimezone(dt.timezone(dt.timedelta(hours=2))),
                                             actor="anna", reason="lost")
    assert done["position"] == plan["position"] and done["before"]["position"] == nxt
    counts, placed = _run(store, w)
    assert counts["new"] == 1 and placed["placed"] == 1
    with store.transaction() as s:
        assert s.get(NyaAdmission, late.admission_id).state == "placed"
        a = s.scalars(select(AuditLog).where(AuditLog.action == "checkpoint.replay")).one()
    assert a.actor == "anna" and a.detail["position"] == plan["position"]
    assert _placed(store) == placed_before + 1 and sum(1 for p in w["L"].plan.values() for _ in p) >= placed_before + 1
    with pytest.raises(KeyError, match="no NyA stream"):
        checkpoints.replay_sequence_since(store, "ladok-merits", since, actor="a", reason="x")


def _placed(store) -> int:
    from brygga.store.models import NyaAdmission

    with store.transaction() as s:
        return len(s.scalars(select(NyaAdmission).where(NyaAdmission.state == "placed")).all())
