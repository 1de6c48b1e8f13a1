"""A flow's steps over fake peers (``tests/unit/fakes.py``: the gateways' Protocols in memory) and
a store made in milliseconds: the orchestration rules that the HTTP tests cover end to end, here
each on its own — chunks and an unreadable reply in the sequence follower, the ``ovrigt`` rule,
an återbud that declines an admission while Ladok places it."""

from sqlalchemy import select

from adapters.http import UnreadableReply
from brygga.flows import admissions
from brygga.flows.admissions import placing
from brygga.states import AdmissionState, Hinder
from brygga.store import ops
from brygga.store.models import FeedCheckpoint, NyaAdmission, Quarantine, UnhandledAdmission
from tests.unit.fakes import FakeLadok, FakeNya, FakeRegister, memory_store, outage, tillfalle

ROUND = "HT2027"
PNRS = ["199001011236", "199002021235", "199003031234", "199004041233", "199005051232", "199006061231",
        "199007071230"]


def _rows(store):
    with store.transaction() as s:
        return {r.admission_id: r for r in s.scalars(select(NyaAdmission))}


def test_a_stream_is_read_in_chunks_and_an_unreadable_reply_keeps_what_came_before(tmp_path):
    store, course = memory_store(tmp_path), tillfalle("KURS1")
    nya = FakeNya(ROUND)
    for p in PNRS:
        nya.add(p, course)
    nya.break_at = 5  # the reply breaks after its fifth admission

    try:
        admissions.fetch(store, nya, ROUND, chunk=3)
        raise AssertionError("an unreadable reply must fail the task")
    except UnreadableReply as e:
        assert e.operation == "GetAdmissions"
    assert sorted(_rows(store)) == ["A00001", "A00002", "A00003", "A00004", "A00005"]  # both chunks kept
    with store.transaction() as s:
        assert ops.checkpoint_get(s, admissions.checkpoint_name(ROUND)).page == 6  # just after the last good one
        (q,) = s.scalars(select(Quarantine)).all()
        assert (q.source, q.kind, q.message_id) == ("nya", "GetAdmissions-reply", f"nya-admissions:{ROUND}:6")
        assert "5 record(s) before it were kept" in q.reason

    counts = admissions.fetch(store, nya, ROUND, chunk=3)  # NyA serves it whole now
    assert nya.asked[-1] == ("admissions", 6) and counts["new"] == 2
    assert len(_rows(store)) == 7
    with store.transaction() as s:
        assert s.get(FeedCheckpoint, admissions.checkpoint_name(ROUND)).page == 8  # NyA's NextSequence


def _seed(store, nya, ladok, *pnrs):
    for p in pnrs:
        nya.add(p, next(iter(ladok.instances.values())))
    admissions.fetch(store, nya, ROUND)


def test_ovrigt_after_five_failures_in_a_row_while_ladok_places_others(tmp_path):
    store, course = memory_store(tmp_path), tillfalle("KURS1")
    ladok, nya = FakeLadok([course], {p: f"uid-{p}" for p in PNRS}), FakeNya(ROUND)
    _seed(store, nya, ladok, PNRS[0], PNRS[1])
    ladok.place_fails["A00001"] = outage()  # only this admission fails; the other is placed
    for run in range(1, placing.OVRIGT_AFTER + 1):
        counts = admissions.place(store, ladok, FakeRegister(), ROUND, workers=1)
        if run < placing.OVRIGT_AFTER:
            assert counts["retry"] == 1 and _rows(store)["A00001"].state == AdmissionState.PENDING
    rows = _rows(store)
    assert rows["A00002"].state == AdmissionState.PLACED
    assert rows["A00001"].state == AdmissionState.UNHANDLED and counts["unhandled"] == 1
    with store.transaction() as s:
        entry = s.scalars(select(UnhandledAdmission)).one()
    assert entry.hinder == Hinder.OVRIGT and "5 tillfälliga fel i rad" in entry.reason


def test_an_outage_never_makes_ovrigt(tmp_path):
    store, course = memory_store(tmp_path), tillfalle("KURS1")
    ladok, nya = FakeLadok([course], {p: f"uid-{p}" for p in PNRS}), FakeNya(ROUND)
    _seed(store, nya, ladok, PNRS[0], PNRS[1])
    ladok.place_fails.update({"A00001": outage(), "A00002": outage()})  # Ladok places nobody
    for _ in range(placing.OVRIGT_AFTER + 2):
        assert admissions.place(store, ladok, FakeRegister(), ROUND, workers=1)["retry"] == 2
    assert {r.state for r in _rows(store).values()} == {AdmissionState.PENDING}
    assert _rows(store)["A00001"].transient_failures == placing.OVRIGT_AFTER + 2


def test_an_aterbud_that_declines_an_admission_while_ladok_places_it_queues_it(tmp_path):
    store, course = memory_store(tmp_path), tillfalle("KURS1")
    ladok, nya = FakeLadok([course], {PNRS[0]: "uid-0"}), FakeNya(ROUND)
    _seed(store, nya, ladok, PNRS[0])

    def aterbud_meanwhile(p):  # the återbud sync commits its decline while Ladok takes the placement
        with store.transaction() as s:
            row = s.get(NyaAdmission, p.anmalningsnummer)
            row.state, row.aterbud_date = AdmissionState.DECLINED, "2027-08-01"

    ladok.on_place = aterbud_meanwhile
    counts = admissions.place(store, ladok, FakeRegister(), ROUND, workers=1)
    assert counts["placed"] == 0 and counts["unhandled"] == 1 and "A00001" in ladok.placed
    row = _rows(store)["A00001"]
    assert row.state == AdmissionState.UNHANDLED and row.antagning_uid  # in Ladok, without its återbud
    with store.transaction() as s:
        assert s.scalars(select(UnhandledAdmission)).one().hinder == Hinder.ATERBUD_UNDER_PLACERING


def test_a_student_the_register_does_not_know_is_queued_and_the_rest_go_on(tmp_path):
    store, course = memory_store(tmp_path), tillfalle("KURS1")
    ladok, nya = FakeLadok([course]), FakeNya(ROUND)
    _seed(store, nya, ladok, PNRS[0], PNRS[1])
    counts = admissions.place(store, ladok, FakeRegister(unknown={PNRS[1]}), ROUND, workers=1)
    assert counts["placed"] == 1 and counts["established"] == 1 and counts["unhandled"] == 1
    assert _rows(store)["A00002"].state == AdmissionState.UNHANDLED
    assert ladok.calls == ["place A00001"]
