import pytest
import requests

from adapters.http import PeerError
from adapters.ladok import FeedGone, LadokAdapter, Refused
from adapters.nya import NyaAdapter, NyaFault
from brygga.connections import PeerConfig
from brygga.records import Student


@pytest.fixture
def ladok(ladok_sim):
    return LadokAdapter(PeerConfig("ladok", ladok_sim.url))


@pytest.fixture
def nya(nya_sim):
    return NyaAdapter(PeerConfig("nya", nya_sim.url))


def test_search_walks_all_pages(ladok, ladok_sim):
    everything = list(ladok.search_tillfallen(limit=5))
    assert len(everything) == len(ladok_sim.state.tillfallen) > 5
    assert len(set(everything)) == len(everything)


def test_feed_walk_and_gone_after_prune(ladok, ladok_sim):
    requests.post(ladok_sim.url + "/sim/feed/generate?n=160", timeout=30).raise_for_status()
    recent = ladok.feed_page()
    assert recent.number is not None and recent.prev_archive
    first = ladok.feed_page(1)
    assert first.prev_archive is None and first.next_archive
    requests.post(ladok_sim.url + "/sim/feed/prune?keep_pages=1", timeout=30).raise_for_status()
    with pytest.raises(FeedGone):
        ladok.feed_page(1)


def test_refusal_carries_the_hinder(ladok):
    from simulators.datagen import people

    (p,) = list(people(1, seed=4242))
    s = ladok.establish(Student(p.personnummer, p.fornamn, p.efternamn))
    assert ladok.student_by_personnummer(p.personnummer).uid == s.uid
    with pytest.raises(Refused) as e:
        ladok.establish(Student(p.personnummer, p.fornamn, p.efternamn))
    assert e.value.hinder.key == "studentinformation.hinder.personnummer.finns" and not e.value.transient
    assert p.personnummer not in str(e.value)  # masked


def test_unknown_student_is_none(ladok):
    assert ladok.student_by_personnummer("198112189876") is None


def _people(n, seed):
    from simulators.datagen import people

    return [p.personnummer for p in people(n, seed=seed)]


def _search_requests(ladok, monkeypatch, rewrite=lambda params: params):
    """Record the student searches the adapter sends; ``rewrite`` plays a Ladok that answers otherwise."""
    sent, real = [], ladok._request

    def spy(method, path, service, **kw):
        if path.endswith("/student/filtrera"):
            kw["params"] = rewrite(kw["params"])
            sent.append(kw["params"])
        return real(method, path, service, **kw)

    monkeypatch.setattr(ladok, "_request", spy)
    return sent


def test_students_by_personnummer_in_batches(ladok, ladok_sim, monkeypatch):
    state = ladok_sim.state
    pnrs = _people(9, seed=5150)
    students = {p: state.etablera_student(p, "Eva", "Lind", emit=False) for p in pnrs[:5]}
    unknown = pnrs[5:7]
    invalid = unknown[0][:-1] + str((int(unknown[0][-1]) + 1) % 10)
    a = pnrs[0]
    asked = [f"{a[:8]}-{a[8:]}", *pnrs[1:5], *unknown, invalid, a]
    sent = _search_requests(ladok, monkeypatch)
    found = ladok.students_by_personnummer(asked, batch=3)
    assert {p: s.uid for p, s in found.items()} == {p: s.uid for p, s in students.items()}
    assert all(s.personnummer == p and s.fornamn == "Eva" for p, s in found.items())
    # 7 distinct valid numbers (the invalid one is not sent): 3 requests, "personnummer" repeated
    assert [[v for k, v in params if k == "personnummer"] for params in sent] == [
        [a, *pnrs[1:3]], pnrs[3:6], pnrs[6:7]]
    assert ladok.students_by_personnummer([]) == {} and len(sent) == 3
    with pytest.raises(ValueError):
        ladok.students_by_personnummer(asked, batch=1001)


def test_students_by_personnummer_follows_short_pages(ladok, ladok_sim, monkeypatch):
    """A Ladok that serves fewer rows per page than the limit asked: the next pages are fetched."""
    pnrs = _people(3, seed=5151)
    students = {p: ladok_sim.state.etablera_student(p, "Eva", "Lind", emit=False).uid for p in pnrs}
    sent = _search_requests(ladok, monkeypatch, lambda params: [(k, 1 if k == "limit" else v) for k, v in params])
    found = ladok.students_by_personnummer(pnrs)
    assert {p: s.uid for p, s in found.items()} == students
    assert [dict(params)["page"] for params in sent] == [1, 2, 3]


def test_students_by_personnummer_never_walks_an_unfiltered_answer(ladok, ladok_sim, monkeypatch):
    """A Ladok that does not filter by the numbers (here: it answers about others too): only the
    numbers asked for count, matched by number, and its further pages are not fetched."""
    pnrs = _people(4, seed=5152)
    students = {p: ladok_sim.state.etablera_student(p, "Eva", "Lind", emit=False).uid for p in pnrs}
    sent = _search_requests(ladok, monkeypatch, lambda params: [
        ("personnummer", p) for p in (pnrs[2], pnrs[0], pnrs[3])] + [("limit", 2), ("page", 1)])
    found = ladok.students_by_personnummer(pnrs[:2])
    assert {p: s.uid for p, s in found.items()} == {pnrs[0]: students[pnrs[0]]}
    assert len(sent) == 1


def test_students_by_personnummer_falls_back_when_ladok_has_no_search(ladok, ladok_sim, monkeypatch):
    """A Ladok without the search resource (404): the students are looked up one by one, once
    the adapter has seen that, without asking for the search again."""
    pnrs = _people(4, seed=5153)
    students = {p: ladok_sim.state.etablera_student(p, "Eva", "Lind", emit=False).uid for p in pnrs[:3]}
    calls, real = [], ladok._request

    def no_search(method, path, service, **kw):
        calls.append("search" if path.endswith("/filtrera") else path.rsplit("/", 2)[-2])
        if path.endswith("/student/filtrera"):
            raise PeerError("ladok", "GET /studentinformation/student/filtrera: HTTP 404", status=404)
        return real(method, path, service, **kw)

    monkeypatch.setattr(ladok, "_request", no_search)
    for _ in range(2):
        calls.clear()
        found = ladok.students_by_personnummer(pnrs, batch=2)
        assert {p: s.uid for p, s in found.items()} == students
    assert calls == ["personnummer"] * 4  # the second time: no search tried


def test_unreachable_peer_is_transient():
    with pytest.raises(PeerError) as e:
        LadokAdapter(PeerConfig("ladok", "http://127.0.0.1:9", extra={"timeout": 2})).student("x")
    assert e.value.transient


def test_nya_fault_is_permanent_and_named(nya):
    with pytest.raises(NyaFault) as e:
        with nya.call("GetOffers", nya.body("GetOffers", Round="HT1999")):
            pass
    assert e.value.code == "unknown-round" and not e.value.transient


def test_nya_call_streams_reply_to_a_mapping(nya):
    m = nya.mapping("admission")
    with nya.call("GetAdmissions", nya.body("GetAdmissions", Round="HT2027", OnlyAccepted=True)) as stream:
        records = list(m.read(stream))
    assert records and all(r.accepted for r in records)


@pytest.mark.parametrize("code", ["..", ".", "...", "V-1.2", "_"])
def test_values_in_url_paths_are_one_segment(ladok, ladok_sim, code):
    """A villkor code is a path segment: ".." (valid in NyA's schema, [A-Za-z0-9_.-]+) must lift that
    villkor, never turn the DELETE into one of the tillfällesantagning itself."""
    from simulators.ladok.state import VILLKORSTYPER, Placering

    st = ladok_sim.state
    student = st.etablera_student(pn_free(st), "Ada", "Berg", emit=False)
    course = next(t for t in st.tillfallen.values() if t.utbildning.typ == "kurs" and not t.installt)
    typ = sorted(VILLKORSTYPER)[0]
    a, _ = st.placera(Placering(student.uid, course.uid, f"NYA-SEG-{abs(hash(code))}", villkor=[(code, typ), ("V9", typ)]))
    assert ladok.lift_villkor(a.uid, code) is True
    assert ladok.villkor(a.uid) == ["V9"]
    assert st.by_anmalningsnummer[a.anmalningsnummer] is a  # the tillfällesantagning is still there
    assert ladok.lift_villkor(a.uid, code) is False  # gone now: 404 for that villkor, not for a path


def test_a_path_segment_encodes_everything_reserved():
    from adapters.http import segment

    assert [segment(v) for v in ("..", ".", "...", "a/b", "x?y#z", "%2E", "V 1", "å")] == [
        "%2E%2E", "%2E", "...", "a%2Fb", "x%3Fy%23z", "%252E", "V%201", "%C3%A5"]


def pn_free(st) -> str:
    from brygga import personnummer as pn

    for n in range(1000):
        p = pn.with_check_digit(f"19700101{n:03d}")
        if p not in st.by_pnr:
            return p
    raise AssertionError("no free personnummer")
