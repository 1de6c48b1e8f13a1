"""Ladok simulator over real HTTP: REST rules, XSD validity of responses and feed, archive walking, pruning."""

from __future__ import annotations

import datetime as dt

import pytest

from brygga import xmlsafe
from mappings.ladok.events import xsd_order
from simulators import datagen
from simulators.ladok import LadokState, create_app, seed_catalogue
from simulators.ladok.xml import NS, schema as ladok_schema

pytestmark = pytest.mark.integration

ATOM = "{http://www.w3.org/2005/Atom}"
SD, SI, BASE = f"{{{NS['sd']}}}", f"{{{NS['si']}}}", f"{{{NS['base']}}}"
NSDECL = " ".join(f'xmlns:{p}="{u}"' for p, u in NS.items())
OV = "studiedeltagande.domain.behorighetsvillkor.typ.ov"
START = dt.date(2027, 8, 30)
EVENT_TYPES = {
    "studentinformation/LokalStudentEvent", "studiedeltagande/StudentTillLarosateEvent",
    "studiedeltagande/ForvantatDeltagandeSkapadEvent",
    "studiedeltagande/NuvarandeBehorighetsvillkorEvent", "studiedeltagande/RegistreringEvent",
    "studiedeltagande/PaborjatUtbildningstillfalleEvent", "studiedeltagande/PaborjadUtbildningEvent",
    "studiedeltagande/AterbudEvent", "studiedeltagande/AvbrottEvent",
    "studiedeltagande/AterkalladregistreringEvent", "studiedeltagande/AterkalladPaborjadUtbildningEvent",
    "studiedeltagande/AterkallatPaborjatUtbildningstillfalleEvent",
    "studiedeltagande/UppehallEvent", "resultat/ResultatPaModulAttesteratEvent",
    "resultat/TillgodoraknandeAttesteratEvent", "examen/UtfardatBevisEvent",
    "utbildningsinformation/UtbildningstillfalleInstalltEvent", "utbildningsinformation/KurstillfalleTillStatusEvent",
}


@pytest.fixture(scope="module")
def state():
    return LadokState(page_size=10)


@pytest.fixture(scope="module")
def xsd():
    return ladok_schema()


@pytest.fixture(autouse=True)
def _fresh(state):
    state.reset()
    seed_catalogue(state, seed=3, n_courses=12, n_programmes=2)


class Sim:
    """Small client: REST calls return parsed, XSD-validated XML; ``ctl`` calls the JSON control API."""

    def __init__(self, server, http, xsd):
        self.url, self.http, self.xsd = server.url, http, xsd
        self._pnr = (p.personnummer for p in datagen.people(500, seed=99) if not p.skyddad)

    def xml(self, resp, status):
        assert resp.status_code == status, resp.text
        assert resp.headers["content-type"].startswith("application/vnd.ladok-")
        root = xmlsafe.fromstring(resp.content)
        assert self.xsd.validate(root), self.xsd.error_log.last_error
        return root

    def hinder(self, resp, status, key):
        """A refusal as Ladok answers it: a LadokException (the rule's key as its Detaljkod, a
        FelUID) or, for a placement a rule stops, a rule result with the rule's Hinder."""
        root = self.xml(resp, status)
        if root.tag == f"{BASE}LadokException":
            assert root.findtext(f"{BASE}Detaljkod") == key
            assert root.findtext(f"{BASE}FelUID") and root.findtext(f"{BASE}Felkategori")
            text = root.findtext(f"{BASE}DetaljkodText")
        else:
            assert root.tag == f"{SD}Regelresultat"
            h = root.find(f"{SD}HinderLista/{SD}Hinder")
            assert h.findtext(f"{BASE}I18nNyckel") == key and h.findtext(f"{BASE}Stoppande") == "true"
            text = h.findtext(f"{BASE}Text/{BASE}Benamning/{BASE}Text")
        assert text
        return text

    def ctl(self, method, path, status=None, **body):
        resp = self.http.request(method, f"{self.url}/sim{path}", json=body or None)
        if status is not None:
            assert resp.status_code == status, resp.text
        return resp.json()

    def student(self, **kw):
        return self.ctl("POST", "/student", 201, personnummer=next(self._pnr), fornamn="Anna", efternamn="Berg", **kw)

    def kurs(self, kod, start=START, **kw):
        return self.ctl("POST", "/utbildningstillfalle", 201, utbildningskod=kod, benamning_sv=f"Kurs {kod}",
                        tillfalleskod=kw.pop("tillfalleskod", f"{kod[-3:]}01"), start=start.isoformat(),
                        slut=(start + dt.timedelta(weeks=10)).isoformat(), antagningsomgangar=["HT2027"], **kw)

    def program(self, kod, ingaende):
        return self.ctl("POST", "/utbildningstillfalle", 201, utbildningskod=kod, benamning_sv=f"Program {kod}",
                        typ="program", omfattning="180", tillfalleskod=f"{kod[-3:]}99", start=START.isoformat(),
                        slut="2030-06-05", antagningsomgangar=["HT2027"], ingaende=ingaende)

    def placera(self, student_uid, tillfalle_uid, nr, *, extra="", villkor=()):
        v = "".join(f"<sd:Behorighetsvillkor><sd:Behorighetsvillkorstyp>{OV}</sd:Behorighetsvillkorstyp>"
                    f"<sd:ExternTextUID>{k}</sd:ExternTextUID></sd:Behorighetsvillkor>" for k in villkor)
        body = (f"<sd:Tillfallesantagning {NSDECL}><sd:StudentUID>{student_uid}</sd:StudentUID>"
                f"<sd:UtbildningstillfalleUID>{tillfalle_uid}</sd:UtbildningstillfalleUID>"
                f"<sd:Anmalningsnummer>{nr}</sd:Anmalningsnummer>"
                "<sd:Studieavgiftsbetalning>studiedeltagande.domain.studieavgiftsbetalningsvarde.ej_aktuell"
                f"</sd:Studieavgiftsbetalning>{extra}"
                f"<sd:BehorighetsvillkorLista>{v}</sd:BehorighetsvillkorLista></sd:Tillfallesantagning>")
        return self.http.post(f"{self.url}/studiedeltagande/tillfallesantagning", data=body.encode(),
                              headers={"Content-Type": "application/vnd.ladok-studiedeltagande+xml"})

    def antagning(self, *args, **kw) -> str:
        return self.xml(self.placera(*args, **kw), 201).findtext(f"{SD}TillfallesantagningUID")

    def post_xml(self, path, body):
        return self.http.post(f"{self.url}{path}", data=body.encode())

    def aterbud(self, uid, datum="2027-08-20", system="NyA"):
        return self.post_xml(f"/studiedeltagande/tillfallesantagning/{uid}/aterbud",
                             f"<sd:Aterbud {NSDECL}><sd:Grundkalla><sd:Atgardstyp>studiedeltagande.domain.atgardstyp."
                             f"aterbud_meddelat_av_studenten</sd:Atgardstyp></sd:Grundkalla>"
                             f"<sd:Aterbudsdatum>{datum}</sd:Aterbudsdatum><sd:ExterntSystem>{system}</sd:ExterntSystem>"
                             "</sd:Aterbud>")

    def avbrott(self, uid, datum):
        return self.post_xml(f"/studiedeltagande/tillfallesantagning/{uid}/avbrott",
                             f"<sd:Avbrott {NSDECL}><sd:Avbrottsdatum>{datum}</sd:Avbrottsdatum></sd:Avbrott>")

    def feed(self, path="recent", status=200):
        resp = self.http.get(f"{self.url}/uppfoljning/feed/{path}")
        assert resp.status_code == status
        return xmlsafe.fromstring(resp.content) if status == 200 else None


@pytest.fixture
def sim(server, http, xsd):
    return Sim(server, http, xsd)


def _links(feed):
    return {link.get("rel"): link.get("href").rsplit("/", 1)[-1] for link in feed.findall(f"{ATOM}link")}


# --- studentinformation ---------------------------------------------------------------------
def _student_xml(pnr, extra=""):
    return (f"<si:Student {NSDECL}><si:Efternamn>Lind</si:Efternamn><si:Fornamn>Eva</si:Fornamn>"
            f"<si:Personnummer>{pnr}</si:Personnummer>{extra}</si:Student>")


ADRESS = ("<si:Postadress><si:Postnummer>41101</si:Postnummer><si:Postort>GÖTEBORG</si:Postort>"
          "<si:Utdelningsadress>Storgatan 1</si:Utdelningsadress></si:Postadress>")


def test_establish_student_rules(sim):
    pnr = next(sim._pnr)
    created = sim.xml(sim.post_xml("/studentinformation/student", _student_xml(pnr, ADRESS)), 201)
    uid = created.findtext(f"{BASE}Uid")
    assert created.findtext(f"{SI}Personnummer") == pnr
    got = sim.xml(sim.http.get(f"{sim.url}/studentinformation/student/personnummer/{pnr}"), 200)
    assert got.findtext(f"{BASE}Uid") == uid
    assert sim.xml(sim.http.get(f"{sim.url}/studentinformation/student/{uid}"), 200).findtext(f"{SI}Fornamn") == "Eva"
    kontakt = sim.xml(sim.http.get(f"{sim.url}/studentinformation/student/{uid}/kontaktuppgifter"), 200)
    assert kontakt.findtext(f"{SI}Postadresser/{SI}Postort") == "GÖTEBORG"
    sim.hinder(sim.post_xml("/studentinformation/student", _student_xml(pnr)), 409,
               "studentinformation.hinder.personnummer.finns")
    bad = pnr[:-1] + str((int(pnr[-1]) + 1) % 10)
    assert "Luhn" in sim.hinder(sim.post_xml("/studentinformation/student", _student_xml(bad)), 400,
                                "studentinformation.hinder.personnummer.ogiltigt")
    skyddad = "<si:SkyddadePersonuppgifter/>"
    sim.hinder(sim.post_xml("/studentinformation/student", _student_xml(next(sim._pnr), skyddad + ADRESS)), 400,
               "studentinformation.hinder.skyddad.adress")
    ok = sim.xml(sim.post_xml("/studentinformation/student", _student_xml(pnr2 := next(sim._pnr), skyddad)), 201)
    kontakt = sim.xml(sim.http.get(f"{sim.url}/studentinformation/student/{ok.findtext(f'{BASE}Uid')}"
                                   "/kontaktuppgifter"), 200)
    assert kontakt.find(f"{SI}Postadresser") is None
    assert sim.ctl("GET", f"/student/{ok.findtext(f'{BASE}Uid')}")["personnummer"] == pnr2
    sim.hinder(sim.http.get(f"{sim.url}/studentinformation/student/personnummer/{next(sim._pnr)}"), 404,
               "student.hittades.ej")


def test_student_search_by_many_personnummer(sim):
    students = [sim.student() for _ in range(3)]
    a, b, c = (s["personnummer"] for s in students)
    unknown = next(sim._pnr)
    url = f"{sim.url}/studentinformation/student/filtrera"
    # any form the single lookup accepts; unknown numbers are simply absent; a repeat counts once
    asked = [a, f"{b[:8]}-{b[8:]}", unknown, f"{c[2:8]}-{c[8:]}", a]
    root = sim.xml(sim.http.get(url, params={"personnummer": asked}), 200)
    assert root.tag == f"{SI}SokresultatStudentinformationRepresentation"
    assert root.findtext(f"{BASE}TotaltAntalPoster") == "3"
    rows = root.findall(f"{SI}Resultat")
    assert [(r.findtext(f"{BASE}Uid"), r.findtext(f"{SI}Personnummer"), r.findtext(f"{SI}Fornamn"))
            for r in rows] == [(s["uid"], s["personnummer"], "Anna") for s in students]
    assert [r.find(f"{{{NS['dap']}}}link").get("uri") for r in rows] == [
        f"{sim.url}/studentinformation/student/{s['uid']}" for s in students]

    pages = [sim.xml(sim.http.get(url, params={"personnummer": [a, b, c], "limit": 2, "page": n}), 200)
             for n in (1, 2, 3)]
    assert [p.findtext(f"{BASE}TotaltAntalPoster") for p in pages] == ["3"] * 3
    assert [len(p.findall(f"{SI}Resultat")) for p in pages] == [2, 1, 0]

    assert sim.xml(sim.http.get(url, params={"personnummer": unknown}), 200).findtext(f"{BASE}TotaltAntalPoster") == "0"
    for params in ({}, {"personnummer": [a] * 1001}, {"personnummer": a, "limit": 1001}, {"personnummer": a, "page": 0},
                   {"personnummer": a, "limit": "x"}):
        sim.hinder(sim.http.get(url, params=params), 400, "commons.fel.ogiltig.parameter")
    sim.xml(sim.http.get(url, params={"personnummer": [a] * 1000}), 200)
    bad = a[:-1] + str((int(a[-1]) + 1) % 10)
    sim.hinder(sim.http.get(url, params={"personnummer": [a, bad]}), 400,
               "studentinformation.hinder.personnummer.ogiltigt")


# --- utbildningsinformation -----------------------------------------------------------------
def test_catalogue_filter_paging_and_package(sim, state):
    total_seeded = sum(1 for t in state.tillfallen.values() if "HT2027" in t.omgangar)
    seen, page = [], 1
    while True:
        root = sim.xml(sim.http.get(f"{sim.url}/utbildningsinformation/utbildningstillfalle/filtrera",
                                    params={"antagningsomgang": "HT2027", "page": page, "limit": 4}), 200)
        assert int(root.findtext(f"{BASE}TotaltAntalPoster")) == total_seeded
        rows = root.findall("{%s}Resultat" % NS["ui"])
        if not rows:
            break
        seen += [r.findtext("{%s}Uid" % NS["ui"]) for r in rows]
        page += 1
    assert len(seen) == len(set(seen)) == total_seeded
    prog = next(t for t in state.tillfallen.values() if t.utbildning.typ == "program")
    by_code = sim.xml(sim.http.get(f"{sim.url}/utbildningsinformation/utbildningstillfalle/filtrera",
                                   params={"utbildningskod": prog.utbildning.kod}), 200)
    row = by_code.find("{%s}Resultat" % NS["ui"])
    assert row.findtext("{%s}Utbildningskod" % NS["ui"]) == prog.utbildning.kod
    assert sorted(l.get("uri").rsplit("/", 1)[-1] for l in row.findall("{%s}link" % NS["dap"])) == sorted(prog.ingaende)
    single = sim.xml(sim.http.get(f"{sim.url}/utbildningsinformation/utbildningstillfalle/{prog.uid}"), 200)
    attrs = {(a.findtext("{%s}Namn" % NS["ui"]), a.findtext("{%s}Varde" % NS["ui"])) for a in single.iter("{%s}Attributvarden" % NS["ui"])}
    assert ("utbildningstillfalle.attribut.antagningsomgang", "HT2027") in attrs
    assert ("utbildningstillfalle.attribut.utbildningskod", prog.utbildning.kod) in attrs


# --- placement ------------------------------------------------------------------------------
def test_placement_rules(sim):
    s = sim.student()["uid"]
    k1, k2, k3 = (sim.kurs(k)["uid"] for k in ("TDA101", "TDA102", "TDA103"))
    p1, p2 = sim.program("TKAAA", [k1, k2])["uid"], sim.program("TKBBB", [k2])["uid"]
    ap1 = sim.antagning(s, p1, "NYA-1")
    # exactly one admitted package contains k1 -> placed inside it
    plan_k1 = sim.placera(s, k1, "NYA-2", villkor=["V1"])
    root = sim.xml(plan_k1, 201)
    ak1 = root.findtext(f"{SD}TillfallesantagningUID")
    assert sim.ctl("GET", f"/tillfallesantagning/{ak1}")["paket_tillfallesantagning_uid"] == ap1
    # idempotent on the external admission id
    again = sim.xml(sim.placera(s, k1, "NYA-2", villkor=["V1"]), 200)
    assert again.findtext(f"{SD}TillfallesantagningUID") == ak1
    assert len(sim.ctl("GET", f"/student/{s}/plan")["antagningar"]) == 2
    sim.hinder(sim.placera(s, k3, "NYA-2"), 409, "studiedeltagande.hinder.anmalningsnummer.konflikt")
    # k2 sits in two packages the student is admitted to -> hinder unless package/free-standing chosen
    sim.antagning(s, p2, "NYA-3")
    sim.hinder(sim.placera(s, k2, "NYA-4"), 409, "studiedeltagande.hinder.flera.kurspaketeringar")
    ak2 = sim.antagning(s, k2, "NYA-4", extra=f"<sd:KurspaketeringstillfalleUID>{p2}</sd:KurspaketeringstillfalleUID>")
    assert sim.ctl("GET", f"/tillfallesantagning/{ak2}")["kurspaketeringstillfalle_uid"] == p2
    # programme-internal admission without the package in the plan
    other = sim.student()["uid"]
    sim.hinder(sim.placera(other, k1, "NYA-5", extra="<sd:InomKurspaketering>true</sd:InomKurspaketering>"), 409,
               "studiedeltagande.hinder.kurspaketering.saknas")
    sim.hinder(sim.placera(other, k1, "NYA-5", extra=f"<sd:KurspaketeringstillfalleUID>{p1}"
                           "</sd:KurspaketeringstillfalleUID>"), 409, "studiedeltagande.hinder.kurspaketering.saknas")
    free = sim.antagning(other, k2, "NYA-6", extra="<sd:Fristaende>true</sd:Fristaende>")
    assert sim.ctl("GET", f"/tillfallesantagning/{free}")["kurspaketeringstillfalle_uid"] is None
    # already started: registered on another instance of the same course
    sim.ctl("POST", "/registrering", 201, tillfallesantagning_uid=free)
    k2b = sim.kurs("TDA102", tillfalleskod="10299", start=dt.date(2028, 1, 17))["uid"]
    h = sim.hinder(sim.placera(other, k2b, "NYA-7"), 409, "studiedeltagande.hinder.redan.paborjat")
    assert "påbörjat" in h
    # cancelled instance, unknown student/instance
    sim.ctl("POST", f"/utbildningstillfalle/{k3}/installt", 200)
    sim.hinder(sim.placera(other, k3, "NYA-8"), 409, "studiedeltagande.hinder.utbildningstillfalle.installt")
    sim.hinder(sim.placera("nope", k1, "NYA-9"), 404, "student.hittades.ej")
    sim.hinder(sim.placera(other, "nope", "NYA-9"), 404, "utbildningstillfalle.hittades.ej")
    plan = sim.xml(sim.http.get(f"{sim.url}/studiedeltagande/studiestruktur/student/{s}"), 200)
    roots = plan.findall(f"{SD}Studiestrukturer/{SD}Studiestruktur")
    assert {r.findtext(f"{SD}Referens") for r in roots} == {ap1, sim.ctl("GET", f"/tillfallesantagning/{ak2}")["paket_tillfallesantagning_uid"]}
    assert any(b.findtext(f"{SD}Referens") == ak1 for r in roots for b in r.findall(f"{SD}Barn"))


def test_behorighetsvillkor(sim):
    s = sim.student()["uid"]
    k = sim.kurs("MA1101")["uid"]
    a = sim.antagning(s, k, "NYA-10", villkor=["V1", "V2", "V3"])
    base = f"{sim.url}/studiedeltagande/behorighetsvillkor/tillfallesantagning/{a}"
    kods = lambda root: sorted(v.findtext(f"{SD}Typ") for v in root.iter(f"{SD}Behorighetsvillkor"))
    assert kods(sim.xml(sim.http.get(base), 200)) == ["V1", "V2", "V3"]
    assert kods(sim.xml(sim.http.delete(f"{base}/V1"), 200)) == ["V2", "V3"]
    sim.hinder(sim.http.delete(f"{base}/V1"), 404, "behorighetsvillkor.hittades.ej")
    sim.ctl("DELETE", f"/tillfallesantagning/{a}/behorighetsvillkor/V2", 200)
    villkor = {v["kod"]: v for v in sim.ctl("GET", f"/tillfallesantagning/{a}")["villkor"]}
    assert villkor["V1"]["borttaget"] and not villkor["V1"]["manuellt"]
    assert villkor["V2"]["borttaget"] and villkor["V2"]["manuellt"] and not villkor["V3"]["borttaget"]
    # one villkor put on (sd:SkapaBehorighetsvillkor); a list or an incomplete one is refused
    body = (f"<sd:SkapaBehorighetsvillkor {NSDECL}><sd:Behorighetsvillkorstyp>{OV}"
            "</sd:Behorighetsvillkorstyp><sd:ExternTextUID>V9</sd:ExternTextUID></sd:SkapaBehorighetsvillkor>")
    assert kods(sim.xml(sim.http.post(base, data=body.encode()), 201)) == ["V3", "V9"]
    sim.hinder(sim.http.post(base, data=body.replace("V9", "").encode()), 400,
               "studiedeltagande.behorighetsvillkor.ofullstandigt")
    sim.hinder(sim.http.post(base, data=f"<sd:BehorighetsvillkorLista {NSDECL}/>".encode()), 400,
               "commons.fel.fel.rotelement")
    assert sim.http.put(base, data=body.encode()).status_code == 405


# --- återbud and avbrott --------------------------------------------------------------------
def test_aterbud_rules(sim):
    s = sim.student()["uid"]
    k1, k2 = sim.kurs("EDA101")["uid"], sim.kurs("EDA102")["uid"]
    p = sim.program("SGXYZ", [k1, k2])["uid"]
    ap = sim.antagning(s, p, "NYA-20")
    ak1, ak2 = sim.antagning(s, k1, "NYA-21"), sim.antagning(s, k2, "NYA-22")
    root = sim.xml(sim.aterbud(ak1), 201)
    assert root.findtext(f"{SD}Aterbudsdatum") == "2027-08-20"
    sim.hinder(sim.aterbud(ak1), 409, "studiedeltagande.hinder.aterbud.finns")
    sim.ctl("POST", "/registrering", 201, tillfallesantagning_uid=ak2)
    sim.hinder(sim.aterbud(ak2), 409, "studiedeltagande.hinder.registrerad")
    sim.hinder(sim.aterbud(ap), 409, "studiedeltagande.hinder.registrerad")  # a course in the package is registered
    # a programme återbud covers the course admissions in its package
    s2 = sim.student()["uid"]
    ap2 = sim.antagning(s2, p, "NYA-23")
    c1, c2 = sim.antagning(s2, k1, "NYA-24"), sim.antagning(s2, k2, "NYA-25")
    sim.xml(sim.aterbud(ap2), 201)
    plan = {a["uid"]: a for a in sim.ctl("GET", f"/student/{s2}/plan")["antagningar"]}
    assert all(plan[x]["tillstand"] == "aterbud" and plan[x]["aterbud"]["externt_system"] == "NyA"
               for x in (ap2, c1, c2))
    # återbud entered in Ladok by staff: no external system
    s3 = sim.student()["uid"]
    a3 = sim.antagning(s3, k1, "NYA-26", extra="<sd:Fristaende>true</sd:Fristaende>")
    assert sim.ctl("POST", "/aterbud", 200, tillfallesantagning_uid=a3)["aterbud"]["externt_system"] is None


@pytest.mark.parametrize("day, early", [(20, True), (21, False), (22, False)])
def test_avbrott_early_boundary(sim, day, early):
    s = sim.student()["uid"]
    k = sim.kurs("FY1101")["uid"]
    a = sim.antagning(s, k, f"NYA-3{day}")
    sim.hinder(sim.avbrott(a, START.isoformat()), 409, "studiedeltagande.hinder.ej.registrerad")
    sim.ctl("POST", "/registrering", 201, tillfallesantagning_uid=a, datum=START.isoformat())
    before = sim.ctl("GET", "/feed/stats")["events"]
    root = sim.xml(sim.avbrott(a, (START + dt.timedelta(days=day)).isoformat()), 201)
    assert (root.findtext(f"{SD}Anteckning") is not None) is early
    got = sim.ctl("GET", f"/tillfallesantagning/{a}")
    assert got["tillstand"] == ("tidigtavbrott" if early else "avbrott")
    assert (got["registreringar"][0]["aterkallad"] is not None) is early
    # an early avbrott withdraws the registration and the start: no AvbrottEvent (as real Ladok)
    assert sim.ctl("GET", "/feed/stats")["events"] - before == (3 if early else 1)
    terms = [e.find(f"{ATOM}category").get("term").rsplit("/", 1)[-1] for e in sim.feed().iter(f"{ATOM}entry")]
    expected = (["AterkallatPaborjatUtbildningstillfalleEvent", "AterkalladPaborjadUtbildningEvent",
                 "AterkalladregistreringEvent"] if early else ["AvbrottEvent"])
    assert terms[: len(expected)] == expected  # newest first
    sim.hinder(sim.avbrott(a, START.isoformat()), 409, "studiedeltagande.hinder.avbrott.finns")


# --- scenario emitting every event type; feed validity, archive walk, pruning ---------------
def test_feed_validates_walks_and_prunes(sim, state):
    s = sim.student()["uid"]
    k1, k2 = sim.kurs("DAT101")["uid"], sim.kurs("DAT102")["uid"]
    p = sim.program("TKFFF", [k1, k2])["uid"]
    ap = sim.antagning(s, p, "NYA-40")
    a1 = sim.antagning(s, k1, "NYA-41", villkor=["V1"])
    a2 = sim.antagning(s, k2, "NYA-42")
    sim.http.delete(f"{sim.url}/studiedeltagande/behorighetsvillkor/tillfallesantagning/{a1}/V1")
    sim.ctl("POST", "/registrering", 201, tillfallesantagning_uid=a1, datum=START.isoformat())
    sim.ctl("POST", "/resultat", 201, tillfallesantagning_uid=a1, modulkod="TEN1", betyg="VG")
    sim.ctl("POST", "/tillgodoraknande", 201, student_uid=s, benamning="Matematik", omfattning="7.5")
    sim.ctl("POST", "/uppehall", 201, tillfallesantagning_uid=ap, startdatum="2028-01-17",
            planerat_slutdatum="2028-06-04")
    sim.ctl("POST", "/bevis", 201, student_uid=s, kurspaketeringstillfalle_uid=p)
    sim.xml(sim.aterbud(a2), 201)
    sim.xml(sim.avbrott(a1, "2027-10-15"), 201)  # after the first three weeks: an avbrott
    s2 = sim.student()["uid"]
    early = sim.antagning(s2, k1, "NYA-43", extra="<sd:Fristaende>true</sd:Fristaende>")
    sim.ctl("POST", "/registrering", 201, tillfallesantagning_uid=early, datum=START.isoformat())
    sim.xml(sim.avbrott(early, "2027-09-01"), 201)  # within them: the registration withdrawn
    sim.ctl("POST", f"/utbildningstillfalle/{k2}/utannonsera", 200, utannonserat=False)
    sim.ctl("POST", f"/utbildningstillfalle/{k2}/installt", 200)
    res = sim.xml(sim.http.get(f"{sim.url}/resultat/studieresultat/resultat/student/{s}"), 200)
    assert res.findtext(f".//{{{NS['rr']}}}Betygsgradsobjekt/{BASE}Kod") == "VG"
    sim.xml(sim.http.get(f"{sim.url}/studiedeltagande/studiestruktur/student/{s}"), 200)
    sim.ctl("POST", "/feed/generate?n=35", 200)
    # walk: recent -> prev-archive ... -> page 1, then next-archive back up
    recent = sim.feed()
    links = _links(recent)
    last = int(links["via"])
    assert links["self"] == "recent" and last == state.feed.last
    pages, n = {}, last
    while True:
        page = sim.feed(str(n))
        pages[n] = page
        if n == 1:
            assert "prev-archive" not in _links(page)
            break
        assert _links(page)["prev-archive"] == str(n - 1)
        n -= 1
    for n in range(1, last):
        assert _links(pages[n])["next-archive"] == str(n + 1)
        assert len(pages[n].findall(f"{ATOM}entry")) >= 10  # closed at the end of an action: uneven
    types, ids = set(), set()
    for n in sorted(pages):
        for entry in pages[n].findall(f"{ATOM}entry"):
            cat = entry.find(f"{ATOM}category")
            assert cat.get("label") == "Event-typ"
            event = entry.find(f"{ATOM}content")[0]
            # the wire order of the real page (EventContext first); valid in the XSDs' order
            assert [c.tag for c in event[:2]] == ["{%s}EventContext" % NS["events"], "{%s}HandelseUID" % NS["events"]]
            assert sim.xsd.validate(xsd_order(event)), sim.xsd.error_log.last_error
            assert cat.get("term") == f"http://schemas.ladok.se/{cat.get('term').split('/')[3]}/{event.tag.split('}')[1]}"
            types.add("/".join(cat.get("term").split("/")[3:]))
            ids.add(entry.findtext(f"{ATOM}id"))
    assert EVENT_TYPES <= types
    assert len(ids) == state.feed.count
    assert sim.ctl("POST", "/feed/prune?keep_pages=2", 200)["first_page"] == last - 1
    sim.feed("1", status=404)
    sim.feed(str(last - 2), status=404)
    assert _links(sim.feed(str(last - 1)))["prev-archive"] == str(last - 2)
    sim.feed(str(last + 1), status=404)
    assert sim.http.get(f"{sim.url}/uppfoljning/feed/recent").headers["content-type"].startswith("application/atom+xml")


def test_bulk_generate_pages(sim, state):
    assert sim.ctl("POST", "/feed/generate?n=5000", 200)["events"] == 5000
    assert state.feed.last >= 250
    sim.feed("250")
    sim.feed("recent")


def test_participants_of_instances_valid_paged_and_protected_by_uid_only(sim, state):
    students = state.seed_students(30, 5)
    students[0].skyddad = True
    courses = [t for t in state.tillfallen.values() if not t.installt][:3]
    state.seed_deltagande(students, courses, 10, seed=5)
    uids = [t.uid for t in courses]
    params = [("kurstillfalleUID", u) for u in uids]
    first = sim.xml(sim.http.get(f"{sim.url}/studiedeltagande/deltagare/kurstillfalle", params=params + [("limit", 20)]), 200)
    assert first.findtext(f"{BASE}TotaltAntalPoster") == "30"
    second = sim.xml(sim.http.get(f"{sim.url}/studiedeltagande/deltagare/kurstillfalle",
                                  params=params + [("limit", 20), ("page", 2)]), 200)
    hits = first.findall(f"{SD}Resultat") + second.findall(f"{SD}Resultat")
    assert len(hits) == 30 and {h.findtext(f"{SD}UtbildningstillfalleUID") for h in hits} == set(uids)
    for h in hits:
        student = h.find(f"{SD}Student")
        if student.findtext(f"{BASE}Uid") == students[0].uid:
            assert student.findtext(f"{BASE}Efternamn") is None and student.findtext(f"{BASE}Personnummer") is None
        else:
            assert student.findtext(f"{BASE}Personnummer")
    states = {h.findtext(f"{SD}TillstandKurs/{SD}Tillfallesdeltagande").rsplit(".", 1)[1] for h in hits}
    assert states <= {"ej_paborjad", "registrerad", "aterbud", "avbrott", "tidigtavbrott"} and "registrerad" in states
    sim.hinder(sim.http.get(f"{sim.url}/studiedeltagande/deltagare/kurstillfalle"), 400, "commons.fel.ogiltig.parameter")
    # the term search and the e-mail in the contact details
    KI = "{http://schemas.ladok.se/kataloginformation}"
    periods = sim.xml(sim.http.get(f"{sim.url}/kataloginformation/grunddata/period"), 200)
    period_id = next(p.findtext(f"{BASE}ID") for p in periods.iter(f"{KI}Period")
                     if p.findtext(f"{BASE}Kod") == courses[0].startperiod)
    term = sim.xml(sim.http.get(f"{sim.url}/utbildningsinformation/utbildningstillfalle/filtrera",
                                params={"startperiodID": period_id}), 200)
    sim.hinder(sim.http.get(f"{sim.url}/utbildningsinformation/utbildningstillfalle/filtrera",
                            params={"startperiod": courses[0].startperiod}), 400, "commons.fel.ogiltig.parameter")
    assert courses[0].uid in {r.findtext("{http://schemas.ladok.se/utbildningsinformation}Uid")
                              for r in term.iter("{http://schemas.ladok.se/utbildningsinformation}Resultat")}
    with_mail = next(s for s in students if s.epost)
    kontakt = sim.xml(sim.http.get(f"{sim.url}/studentinformation/student/{with_mail.uid}/kontaktuppgifter"), 200)
    assert kontakt.findtext(f"{SI}Epostadress") == with_mail.epost
