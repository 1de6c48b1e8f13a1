import requests

from brygga.records import Address, LadokFel, Placement, Student
from mappings import registry


def test_catalogue_search_and_instances(ladok_sim):
    m = registry.select("ladok", "utbildningstillfalle")
    r = requests.get(ladok_sim.url + "/utbildningsinformation/utbildningstillfalle/filtrera",
                     params={"antagningsomgang": "HT2027", "limit": 400}, timeout=30)
    total, uids = m.read_search(r.content)
    assert total == len(uids) > 0
    state = ladok_sim.state
    for uid in uids:
        (t,) = list(m.read(requests.get(ladok_sim.url + f"/utbildningsinformation/utbildningstillfalle/{uid}", timeout=30).content))
        sim = state.tillfallen[uid]
        assert t.uid == uid and "HT2027" in t.rounds
        assert t.tillfalleskod == sim.kod
        assert t.utbildningskod and t.name_sv and t.credits and t.start and t.end
        if t.is_programme:
            assert t.course_uids, "a programme instance lists the course instances of its package"


def test_establish_student_round_trip_and_protected_identity(ladok_sim):
    m = registry.select("ladok", "student")
    from simulators.datagen import people

    p1, p2 = list(people(2, seed=99))
    open_ = Student(p1.personnummer, p1.fornamn, p1.efternamn, address=Address("Storgatan 1", "41101", "GÖTEBORG"))
    r = requests.post(ladok_sim.url + "/studentinformation/student", data=m.write(open_), timeout=30)
    assert r.status_code == 201, r.text
    got = m.read(r.content)
    assert (got.personnummer, got.fornamn, got.efternamn) == (p1.personnummer, p1.fornamn, p1.efternamn)
    assert got.uid

    # a protected person's address is never written, even when we have one
    protected = Student(p2.personnummer, p2.fornamn, p2.efternamn, protected=True,
                        address=Address("Hemlig 1", "11122", "STOCKHOLM"))
    body = m.write(protected)
    assert b"Hemlig" not in body and b"SkyddadePersonuppgifter" in body
    r = requests.post(ladok_sim.url + "/studentinformation/student", data=body, timeout=30)
    assert r.status_code == 201, r.text

    # establishing twice: Ladok answers a LadokException that the error mapping reads
    r = requests.post(ladok_sim.url + "/studentinformation/student", data=m.write(open_), timeout=30)
    assert r.status_code == 409
    fel = registry.select("ladok", "error").read(r.content)
    assert isinstance(fel, LadokFel)
    assert fel.detaljkod == "studentinformation.hinder.personnummer.finns" and fel.fel_uid and fel.detaljkod_text


def test_placement_request_and_reply(ladok_sim):
    from simulators.datagen import people

    st = registry.select("ladok", "student")
    (p,) = list(people(1, seed=123))
    student = st.read(requests.post(ladok_sim.url + "/studentinformation/student",
                                    data=st.write(Student(p.personnummer, p.fornamn, p.efternamn)), timeout=30).content)
    course = next(t for t in ladok_sim.state.tillfallen.values() if not t.installt)
    pm = registry.select("ladok", "placement")
    placement = Placement(student.uid, course.uid, "NYA-HT2027-1", fee="ej_aktuell", fristaende=True, villkor=("ENG6",))
    r = requests.post(ladok_sim.url + "/studiedeltagande/tillfallesantagning", data=pm.write(placement), timeout=30)
    assert r.status_code == 201, r.text
    placed = pm.read(r.content)
    assert placed["student_uid"] == student.uid and placed["uid"] and placed["package_uid"] is None
    again = requests.post(ladok_sim.url + "/studiedeltagande/tillfallesantagning", data=pm.write(placement), timeout=30)
    assert again.status_code == 200 and pm.read(again.content)["uid"] == placed["uid"]
    v = requests.get(ladok_sim.url + f"/studiedeltagande/behorighetsvillkor/tillfallesantagning/{placed['uid']}",
                     timeout=30)
    assert registry.select("ladok", "villkor").read(v.content) == ["ENG6"]


def test_student_search_page_and_a_hit_with_a_bad_personnummer(ladok_sim):
    from simulators.datagen import people

    m = registry.select("ladok", "student")
    a, b = (ladok_sim.state.etablera_student(p.personnummer, p.fornamn, p.efternamn, emit=False)
            for p in people(2, seed=321))
    r = requests.get(ladok_sim.url + "/studentinformation/student/filtrera",
                     params={"personnummer": [f"{a.personnummer[:8]}-{a.personnummer[8:]}", b.personnummer]},
                     timeout=30)
    assert r.status_code == 200, r.text
    total, students = m.read_search(r.content)
    assert total == 2
    assert students == [Student(s.personnummer, s.fornamn, s.efternamn, uid=s.uid) for s in (a, b)]

    # One hit's Personnummer fails its check digit: left out, the rest of the page still read.
    bad = b.personnummer[:-1] + str((int(b.personnummer[-1]) + 1) % 10)
    total, students = m.read_search(r.content.replace(b.personnummer.encode(), bad.encode()))
    assert total == 2 and [s.uid for s in students] == [a.uid]
