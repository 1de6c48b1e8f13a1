"""Starlette app of the Ladok simulator: Ladok3-style REST (XML), the Atom feed, and ``/sim/`` control (JSON).

See docs/contracts/ladok.md for the exact contract. Requests are parsed with ``brygga.xmlsafe``;
every XML response validates against the public Ladok3 XSDs (``schemas/ladok``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from lxml import etree
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from brygga import xmlsafe
from simulators.ladok import representations as rep
from simulators.ladok.catalogue import seed_catalogue
from simulators.ladok.state import ORSAK, Adress, LadokError, LadokState, Placering
from simulators.ladok.xml import q, tostring

MAX_BODY = 1_000_000
MAX_PERSONNUMMER = 1000  # values of ``personnummer`` in one student search
ATOM_TYPE = "application/atom+xml"


def media_type(service: str) -> str:
    return f"application/vnd.ladok-{service}+xml;charset=UTF-8"


def _xml(root: etree._Element, service: str, status: int = 200) -> Response:
    return Response(tostring(root), status_code=status, media_type=media_type(service))


def _hinder(e: LadokError, service: str) -> Response:
    return _xml(rep.hinder(e), service, e.status)


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


async def _body(request: Request) -> etree._Element:
    data = await request.body()
    if len(data) > MAX_BODY:
        raise LadokError(413, "commons.fel.for.stor", "Begäran är för stor")
    try:
        return xmlsafe.fromstring(data)
    except ValueError as e:
        raise LadokError(400, "commons.fel.ogiltig.xml", f"Ogiltig XML: {e}") from None


def _text(root: etree._Element, name: str) -> str | None:
    value = root.findtext(q(name))
    return value.strip() if value and value.strip() else None


def _bool(root: etree._Element, name: str) -> bool:
    return (_text(root, name) or "false").lower() == "true"


def _date(value: str | None, what: str, default: dt.date | None = None) -> dt.date:
    if value is None and default is not None:
        return default
    try:
        return dt.date.fromisoformat(value)
    except (TypeError, ValueError):
        raise LadokError(400, "commons.fel.ogiltigt.datum", f"{what}: ogiltigt eller saknat datum (ÅÅÅÅ-MM-DD)") from None


def _int(r: Request, name: str, default: int, lo: int, hi: int) -> int:
    try:
        value = int(r.query_params.get(name, default))
    except ValueError:
        raise LadokError(400, "commons.fel.ogiltig.parameter", f"{name} ska vara ett heltal") from None
    if not lo <= value <= hi:
        raise LadokError(400, "commons.fel.ogiltig.parameter", f"{name} ska vara mellan {lo} och {hi}")
    return value


def _villkor(root: etree._Element) -> list[tuple[str, str]]:
    lista = root if root.tag == q("sd:BehorighetsvillkorLista") else root.find(q("sd:BehorighetsvillkorLista"))
    if lista is None:
        return []
    out = []
    for v in lista:
        kod, typ = _text(v, "sd:ExternTextUID"), _text(v, "sd:Behorighetsvillkorstyp")
        if not kod or not typ:
            raise LadokError(400, "studiedeltagande.behorighetsvillkor.ofullstandigt",
                             "Behörighetsvillkor kräver ExternTextUID och Behorighetsvillkorstyp")
        out.append((kod, typ))
    return out


def rest(service: str):
    """Decorator: run ``fn(state, request)`` and render ``LadokError`` as ``base:Hinder``."""
    def wrap(fn: Callable):
        async def endpoint(request: Request) -> Response:
            try:
                return await fn(request.app.state.ladok, request)
            except LadokError as e:
                return _hinder(e, service)
        return endpoint
    return wrap


# --- studentinformation ---------------------------------------------------------------------
@rest("studentinformation")
async def get_student_pnr(s: LadokState, r: Request) -> Response:
    return _xml(rep.student(s.student_by_pnr(r.path_params["pnr"])), "studentinformation")


@rest("studentinformation")
async def filtrera_studenter(s: LadokState, r: Request) -> Response:
    pnrs = r.query_params.getlist("personnummer")
    if not 1 <= len(pnrs) <= MAX_PERSONNUMMER:
        raise LadokError(400, "commons.fel.ogiltig.parameter",
                         f"personnummer ska anges mellan 1 och {MAX_PERSONNUMMER} gånger")
    total, hits = s.filtrera_studenter(pnrs, page=_int(r, "page", 1, 1, 10**9), limit=_int(r, "limit", 400, 1, 1000))
    return _xml(rep.studenter_sokresultat(total, hits, _base(r)), "studentinformation")


@rest("studentinformation")
async def get_student(s: LadokState, r: Request) -> Response:
    return _xml(rep.student(s.student(r.path_params["uid"])), "studentinformation")


@rest("studentinformation")
async def get_kontaktuppgifter(s: LadokState, r: Request) -> Response:
    return _xml(rep.kontaktuppgifter(s.student(r.path_params["uid"])), "studentinformation")


@rest("studentinformation")
async def get_skyddade(s: LadokState, r: Request) -> Response:
    """Whether the student has skyddade personuppgifter: si:SkyddadePersonuppgifter with its status
    (the protected data itself is not given to an integration), 404 when the student has none."""
    st = s.student(r.path_params["uid"])
    if not st.skyddad:
        raise LadokError(404, "studentinformation.skyddadepersonuppgifter.saknas", "Studenten har inga skyddade "
                         "personuppgifter")
    return _xml(rep.skyddade_personuppgifter(st), "studentinformation")


@rest("studentinformation")
async def post_student(s: LadokState, r: Request) -> Response:
    root = await _body(r)
    if root.tag != q("si:Student"):
        raise LadokError(400, "commons.fel.fel.rotelement", "Rotelementet ska vara si:Student")
    adr_el = root.find(q("si:Postadress"))
    adress = None
    if adr_el is not None:
        adress = Adress(_text(adr_el, "si:Utdelningsadress") or "", _text(adr_el, "si:Postnummer") or "",
                        _text(adr_el, "si:Postort") or "")
    student = s.etablera_student(_text(root, "si:Personnummer") or "", _text(root, "si:Fornamn"),
                                 _text(root, "si:Efternamn"),
                                 skyddad=root.find(q("si:SkyddadePersonuppgifter")) is not None, adress=adress)
    return _xml(rep.student(student), "studentinformation", 201)


# --- utbildningsinformation ---------------------------------------------------------------
@rest("utbildningsinformation")
async def get_tillfalle(s: LadokState, r: Request) -> Response:
    return _xml(rep.utbildningstillfalle(s.tillfalle(r.path_params["uid"])), "utbildningsinformation")


@rest("utbildningsinformation")
async def get_kurspaketeringstillfalle(s: LadokState, r: Request) -> Response:
    t = s.tillfalle(r.path_params["uid"])
    if t.utbildning.typ != "program":
        raise LadokError(404, "kurspaketeringstillfalle.hittades.ej", "Tillfället är inte ett kurspaketeringstillfälle")
    return _xml(rep.kurspaketeringstillfalle(t, [s.tillfalle(c) for c in t.ingaende]), "utbildningsinformation")


@rest("utbildningsinformation")
async def filtrera(s: LadokState, r: Request) -> Response:
    qp = r.query_params
    total, hits = s.filtrera(antagningsomgang=qp.get("antagningsomgang"), tillfalleskod=qp.get("tillfalleskod"),
                             utbildningskod=qp.get("utbildningskod"), startperiod=qp.get("startperiod"), page=_int(r, "page", 1, 1, 10**9),
                             limit=_int(r, "limit", 400, 1, 1000))
    return _xml(rep.sokresultat(total, hits, _base(r)), "utbildningsinformation")


# --- studiedeltagande ---------------------------------------------------------------------
@rest("studiedeltagande")
async def deltagare(s: LadokState, r: Request) -> Response:
    """Participants of course or programme instances (``utbildningstillfalleUID`` repeated, as
    sd:SokparametrarDeltagande names it), every state, paged."""
    uids = r.query_params.getlist("utbildningstillfalleUID")
    if not uids or len(uids) > 1000:
        raise LadokError(400, "commons.fel.ogiltig.parameter", "utbildningstillfalleUID: 1 till 1000 tillfällen")
    total, hits = s.deltagare(uids, page=_int(r, "page", 1, 1, 10**9), limit=_int(r, "limit", 400, 1, 5000))
    with s.lock:
        root = rep.deltagare_sokresultat(total, hits, s.students)
    return _xml(root, "studiedeltagande")


@rest("studiedeltagande")
async def get_plan(s: LadokState, r: Request) -> Response:
    uid = r.path_params["uid"]
    with s.lock:
        s.student(uid)
        root = rep.studieplan(s.plan.get(uid, []), _base(r))
    return _xml(root, "studiedeltagande")


@rest("studiedeltagande")
async def post_antagning(s: LadokState, r: Request) -> Response:
    root = await _body(r)
    if root.tag != q("sd:Tillfallesantagning"):
        raise LadokError(400, "commons.fel.fel.rotelement", "Rotelementet ska vara sd:Tillfallesantagning")
    student_uid, tillfalle_uid = _text(root, "sd:StudentUID"), _text(root, "sd:UtbildningstillfalleUID")
    if not student_uid or not tillfalle_uid:
        raise LadokError(400, "studiedeltagande.fel.uid.saknas", "StudentUID och UtbildningstillfalleUID krävs")
    p = Placering(student_uid, tillfalle_uid, _text(root, "sd:Anmalningsnummer") or "",
                  avgift=_text(root, "sd:Studieavgiftsbetalning") or Placering.avgift,
                  kurspaketeringstillfalle_uid=_text(root, "sd:KurspaketeringstillfalleUID"),
                  fristaende=_bool(root, "sd:Fristaende"), inom_kurspaketering=_bool(root, "sd:InomKurspaketering"),
                  villkor=_villkor(root),
                  anmalningsavgift_betald=_bool(root, "sd:AnmalningsavgiftBetald")
                  if _text(root, "sd:AnmalningsavgiftBetald") is not None else None)
    with s.lock:
        a, created = s.placera(p)
        body = rep.tillfallesantagning(a, _base(r))
    return _xml(body, "studiedeltagande", 201 if created else 200)


@rest("studiedeltagande")
async def get_antagning(s: LadokState, r: Request) -> Response:
    with s.lock:
        return _xml(rep.tillfallesantagning(s.antagning(r.path_params["uid"]), _base(r)), "studiedeltagande")


@rest("studiedeltagande")
async def get_villkor(s: LadokState, r: Request) -> Response:
    with s.lock:
        return _xml(rep.villkor(s.antagning(r.path_params["uid"])), "studiedeltagande")


@rest("studiedeltagande")
async def put_villkor(s: LadokState, r: Request) -> Response:
    root = await _body(r)
    with s.lock:
        return _xml(rep.villkor(s.satt_villkor(r.path_params["uid"], _villkor(root))), "studiedeltagande")


@rest("studiedeltagande")
async def delete_villkor(s: LadokState, r: Request) -> Response:
    with s.lock:
        return _xml(rep.villkor(s.lyft_villkor(r.path_params["uid"], r.path_params["kod"])), "studiedeltagande")


@rest("studiedeltagande")
async def post_aterbud(s: LadokState, r: Request) -> Response:
    root = await _body(r)
    grundkalla = root.find(q("sd:Grundkalla"))
    atgard = _text(grundkalla, "sd:Atgardstyp") if grundkalla is not None else None
    orsak = ORSAK + ("uteblev" if atgard and atgard.endswith("uteblev") else "meddelat.av.studenten")
    datum = _date(_text(root, "sd:Aterbudsdatum"), "Aterbudsdatum", dt.date.today())
    with s.lock:
        a = s.aterbud(r.path_params["uid"], datum, orsak, _text(root, "sd:ExterntSystem"))
        return _xml(rep.aterbud(a), "studiedeltagande", 201)


@rest("studiedeltagande")
async def get_aterbud(s: LadokState, r: Request) -> Response:
    """The återbud recorded on an admission (``base:SenastAndradAv`` = the ExterntSystem it came from)."""
    with s.lock:
        a = s.antagning(r.path_params["uid"])
        if a.aterbud is None:
            raise LadokError(404, "aterbud.hittades.ej", f"Tillfällesantagning {a.uid} har inget återbud")
        return _xml(rep.aterbud(a), "studiedeltagande")


@rest("studiedeltagande")
async def post_avbrott(s: LadokState, r: Request) -> Response:
    root = await _body(r)
    datum = _date(_text(root, "sd:Avbrottsdatum"), "Avbrottsdatum")
    with s.lock:
        a = s.avbrott(r.path_params["uid"], datum, _text(root, "sd:Externreferens"))
        return _xml(rep.avbrott(a), "studiedeltagande", 201)


# --- examen -------------------------------------------------------------------------------
@rest("examen")
async def get_bevis_student(s: LadokState, r: Request) -> Response:
    uid = r.path_params["uid"]
    with s.lock:
        s.student(uid)
        rows = sorted((b for b in s.bevis.values() if b.student_uid == uid), key=lambda b: (b.datum, b.uid))
        return _xml(rep.utfardade_bevis(rows), "examen")


@rest("examen")
async def get_bevis(s: LadokState, r: Request) -> Response:
    with s.lock:
        b = s.bevis.get(r.path_params["uid"])
        if b is None:
            raise LadokError(404, "examen.utfardatbevis.hittades.ej", "Utfärdat bevis finns inte")
        return _xml(rep.utfardade_bevis([b]), "examen")


@rest("examen")
async def filtrera_bevis(s: LadokState, r: Request) -> Response:
    """Issued certificates in a period (``utfardandedatumFran``/``utfardandedatumTill``), paged;
    the total in the ``X-Totalt-Antal-Poster`` header (ex:UtfardatBevisLista has no count)."""
    qp = r.query_params
    try:
        fran = dt.date.fromisoformat(qp["utfardandedatumFran"]) if qp.get("utfardandedatumFran") else None
        till = dt.date.fromisoformat(qp["utfardandedatumTill"]) if qp.get("utfardandedatumTill") else None
    except ValueError:
        raise LadokError(400, "commons.fel.ogiltig.parameter", "utfardandedatum: ÅÅÅÅ-MM-DD") from None
    total, rows = s.bevis_utfardade(fran, till, _int(r, "page", 1, 1, 10**9), _int(r, "limit", 400, 1, 1000))
    resp = _xml(rep.utfardade_bevis(rows), "examen")
    resp.headers["X-Totalt-Antal-Poster"] = str(total)
    return resp


# --- resultat -------------------------------------------------------------------------------
@rest("resultat")
async def get_resultat(s: LadokState, r: Request) -> Response:
    uid = r.path_params["uid"]
    with s.lock:
        s.student(uid)
        return _xml(rep.resultat(s.resultat.get(uid, [])), "resultat")


@rest("resultat")
async def get_tillgodo(s: LadokState, r: Request) -> Response:
    uid = r.path_params["uid"]
    with s.lock:
        s.student(uid)
        return _xml(rep.tillgodoraknanden(s.tillgodo.get(uid, [])), "resultat")


# --- feed -----------------------------------------------------------------------------------
async def feed_recent(request: Request) -> Response:
    return _feed(request, None)


async def feed_page(request: Request) -> Response:
    try:
        n = int(request.path_params["n"])
    except ValueError:
        return Response("no such feed page", status_code=404, media_type="text/plain")
    return _feed(request, n)


def _feed(request: Request, n: int | None) -> Response:
    body = request.app.state.ladok.feed_page(n, _base(request))
    if body is None:
        return Response("no such feed page (never written or pruned)", status_code=404, media_type="text/plain")
    return Response(body, media_type=ATOM_TYPE)


# --- control API (JSON) -------------------------------------------------------------------
def control(fn: Callable, ok: int):
    async def endpoint(request: Request) -> Response:
        s: LadokState = request.app.state.ladok
        try:
            body = await request.json() if await request.body() else {}
            if not isinstance(body, dict):
                raise LadokError(400, "sim.fel.json", "JSON-objekt förväntas")
            result = fn(s, request, body)
        except LadokError as e:
            return JSONResponse({"status": e.status, "key": e.key, "text": e.text}, status_code=e.status)
        except (ValueError, KeyError, TypeError) as e:
            return JSONResponse({"status": 400, "key": "sim.fel.begaran", "text": f"{type(e).__name__}: {e}"},
                                status_code=400)
        return JSONResponse(result, status_code=ok)
    return endpoint


def _antagning_uid(s: LadokState, b: dict) -> str:
    if "tillfallesantagning_uid" in b:
        return b["tillfallesantagning_uid"]
    with s.lock:
        return s.antagning_for(b["student_uid"], b["utbildningstillfalle_uid"]).uid


def _d(b: dict, key: str, default: dt.date | None = None) -> dt.date:
    return _date(b.get(key), key, default)


def _student_json(st) -> dict:
    return {"uid": st.uid, "personnummer": st.personnummer, "fornamn": st.fornamn, "efternamn": st.efternamn,
            "skyddad": st.skyddad, "adress": st.adress and vars(st.adress)}


def c_health(s, r, b):
    return {"status": "ok", "students": len(s.students), "tillfallen": len(s.tillfallen),
            "antagningar": len(s.antagningar), "events": s.feed.count, "feed_pages": s.feed.last}


def c_reset(s, r, b):
    s.reset()
    return {"status": "reset"}


def c_seed(s, r, b):
    tillfallen = seed_catalogue(s, int(b.get("seed", 1)), int(b.get("courses", 40)), int(b.get("programmes", 6)),
                                b.get("round", "HT2027"))
    students = s.seed_students(int(b.get("students", 0)), int(b.get("seed", 1)))
    return {"tillfallen": [t.uid for t in tillfallen], "students": [x.uid for x in students]}


def c_create_student(s, r, b):
    adr = b.get("adress")
    st = s.etablera_student(b["personnummer"], b.get("fornamn"), b.get("efternamn"), skyddad=bool(b.get("skyddad")),
                            adress=Adress(**adr) if adr else None)
    return _student_json(st)


def c_get_student(s, r, b):
    return _student_json(s.student(r.path_params["uid"]))


def c_plan(s, r, b):
    return {"antagningar": s.json_plan(r.path_params["uid"])}


def c_create_tillfalle(s, r, b):
    u = s.add_utbildning(b["utbildningskod"], b["benamning_sv"], b.get("benamning_en", b["benamning_sv"]),
                         str(b.get("omfattning", "7.5")), b.get("typ", "kurs"),
                         [tuple(m) for m in b.get("moduler", [("TEN1", "Tentamen", str(b.get("omfattning", "7.5")))])])
    t = s.add_tillfalle(u, b["tillfalleskod"], _d(b, "start"), _d(b, "slut"), takt=int(b.get("studietakt", 100)),
                        studielokalisering_id=int(b.get("studielokalisering_id", 1)),
                        omgangar=b.get("antagningsomgangar", []), ingaende=b.get("ingaende", []),
                        utannonserat=bool(b.get("utannonserat", True)))
    return t.json()


def c_get_tillfalle(s, r, b):
    return s.tillfalle(r.path_params["uid"]).json()


def c_installt(s, r, b):
    return s.stall_in(r.path_params["uid"]).json()


def c_utannonsera(s, r, b):
    return s.utannonsera(r.path_params["uid"], bool(b.get("utannonserat", False))).json()


def c_registrera(s, r, b):
    reg = s.registrera(_antagning_uid(s, b), int(b.get("period", 1)), _d(b, "datum", dt.date.today()))
    return {"uid": reg.uid, "period": reg.period, "datum": reg.datum.isoformat()}


def c_resultat(s, r, b):
    res = s.rapportera_resultat(_antagning_uid(s, b), b["modulkod"], b["betyg"],
                                _d(b, "examinationsdatum", dt.date.today()))
    return {"uid": res.uid, "modul_uid": res.modul.uid, "betygsgrad_id": res.betygsgrad_id}


def c_tillgodo(s, r, b):
    tg = s.tillgodoraknande(b["student_uid"], b.get("benamning", "Tillgodoräknande"), str(b.get("omfattning", "7.5")),
                            _d(b, "beslutsdatum", dt.date.today()), b.get("kurspaketeringstillfalle_uid"))
    return {"uid": tg.uid}


def c_avbrott(s, r, b):
    a = s.avbrott(_antagning_uid(s, b), _d(b, "datum"), b.get("externreferens"))
    return a.json()


def c_uppehall(s, r, b):
    return {"uid": s.uppehall(_antagning_uid(s, b), _d(b, "startdatum"), _d(b, "planerat_slutdatum"),
                              b.get("anteckning"))}


def c_bevis(s, r, b):
    return {"uid": s.utfarda_bevis(b["student_uid"], _d(b, "datum", dt.date.today()),
                                   b.get("kurspaketeringstillfalle_uid"))}


def c_aterbud(s, r, b):
    orsak = ORSAK + b.get("orsak", "meddelat.av.studenten")
    return s.aterbud(_antagning_uid(s, b), _d(b, "datum", dt.date.today()), orsak, None).json()


def c_student_aterbud(s, r, b):
    """The student enters återbud in Ladok's student web (refused when the university does not allow it)."""
    orsak = ORSAK + b.get("orsak", "meddelat.av.studenten")
    return s.aterbud(_antagning_uid(s, b), _d(b, "datum", dt.date.today()), orsak, None, av_student=True).json()


def c_installningar(s, r, b):
    """Lärosätesinställningar for återbud (Ladok's own setting, changed by Ladok administrators)."""
    if r.method == "POST" and "studenter_far_lamna_aterbud" in b:
        v = b["studenter_far_lamna_aterbud"]
        if not isinstance(v, bool):
            raise ValueError("studenter_far_lamna_aterbud: boolean expected")
        with s.lock:
            s.studenter_far_lamna_aterbud = v
    return {"studenter_far_lamna_aterbud": s.studenter_far_lamna_aterbud}


def c_get_antagning(s, r, b):
    with s.lock:
        return s.antagning(r.path_params["uid"]).json()


def c_antagning_by_anmalningsnummer(s, r, b):
    with s.lock:
        a = s.by_anmalningsnummer.get(r.path_params["nr"])
        if a is None:
            raise LadokError(404, "tillfallesantagning.hittades.ej", "Okänt anmälningsnummer")
        return a.json()


def c_villkor_manuellt(s, r, b):
    return s.lyft_villkor(r.path_params["uid"], r.path_params["kod"], manuellt=True).json()


def c_prune(s, r, b):
    keep = int(r.query_params.get("keep_pages", b.get("keep_pages", 1)))
    return {"pruned": s.prune(keep), "first_page": s.feed.first_available, "last_page": s.feed.last}


def c_generate(s, r, b):
    n = int(r.query_params.get("n", b.get("n", 1000)))
    if not 0 <= n <= 10_000_000:
        raise LadokError(400, "sim.fel.n", "n ska vara mellan 0 och 10000000")
    s.generate(n, int(r.query_params.get("seed", 0)))
    return {"generated": n, "events": s.feed.count, "last_page": s.feed.last}


def c_feed_raw(s, r, b):
    """Fault surface (tests, demos): entries put on the feed as sent, e.g. an event with a 200-character
    HandelseUID, or bytes that break the page (a control character); ``{"entries": [str, ...]}``."""
    entries = b["entries"]
    if not isinstance(entries, list) or not all(isinstance(e, str) for e in entries):
        raise LadokError(400, "sim.fel.entries", "entries ska vara en lista med XML-texter")
    with s.lock:
        for entry in entries:
            s.feed.append_bytes(entry.encode("utf-8", "surrogatepass"))
    return {"events": s.feed.count, "last_page": s.feed.last}


def c_stats(s, r, b):
    with s.lock:
        return {"students": len(s.students), "antagningar": len(s.antagningar), "placements_created":
                s.placements_created, "placements_replayed": s.placements_replayed, "bevis": len(s.bevis),
                "feed_events": s.feed.count}


def c_feed_stats(s, r, b):
    return {"events": s.feed.count, "page_size": s.feed.page_size, "first_page": s.feed.first_available,
            "last_page": s.feed.last}


def create_app(state: LadokState) -> Starlette:
    routes = [
        Route("/studentinformation/student", post_student, methods=["POST"]),
        Route("/studentinformation/student/personnummer/{pnr}", get_student_pnr),
        Route("/studentinformation/student/filtrera", filtrera_studenter),  # ahead of {uid}: not a uid
        Route("/studentinformation/student/{uid}", get_student),
        Route("/studentinformation/student/{uid}/kontaktuppgifter", get_kontaktuppgifter),
        Route("/studentinformation/student/{uid}/skyddadepersonuppgifter", get_skyddade),
        Route("/utbildningsinformation/utbildningstillfalle/filtrera", filtrera),
        Route("/utbildningsinformation/utbildningstillfalle/{uid}", get_tillfalle),
        Route("/utbildningsinformation/kurspaketeringstillfalle/{uid}", get_kurspaketeringstillfalle),
        Route("/studiedeltagande/tillfallesdeltagande/student/{uid}", get_plan),
        Route("/studiedeltagande/deltagare/kurstillfalle", deltagare),
        Route("/studiedeltagande/tillfallesantagning", post_antagning, methods=["POST"]),
        Route("/studiedeltagande/tillfallesantagning/{uid}", get_antagning),
        Route("/studiedeltagande/tillfallesantagning/{uid}/behorighetsvillkor", get_villkor),
        Route("/studiedeltagande/tillfallesantagning/{uid}/behorighetsvillkor", put_villkor, methods=["PUT"]),
        Route("/studiedeltagande/tillfallesantagning/{uid}/behorighetsvillkor/{kod}", delete_villkor,
              methods=["DELETE"]),
        Route("/studiedeltagande/tillfallesantagning/{uid}/aterbud", post_aterbud, methods=["POST"]),
        Route("/studiedeltagande/tillfallesantagning/{uid}/avbrott", post_avbrott, methods=["POST"]),
        Route("/studiedeltagande/tillfallesantagning/{uid}/aterbud", get_aterbud, methods=["GET"]),
        Route("/examen/utfardatbevis/filtrera", filtrera_bevis),
        Route("/examen/utfardatbevis/student/{uid}", get_bevis_student),
        Route("/examen/utfardatbevis/{uid}", get_bevis),
        Route("/resultat/studieresultat/student/{uid}", get_resultat),
        Route("/resultat/tillgodoraknande/student/{uid}", get_tillgodo),
        Route("/handelser/feed/recent", feed_recent),
        Route("/handelser/feed/{n}", feed_page),
    ]
    ctl = [
        ("GET", "/sim/health", c_health), ("GET", "/sim/stats", c_stats), ("POST", "/sim/reset", c_reset), ("POST", "/sim/seed", c_seed),
        ("POST", "/sim/student", c_create_student), ("GET", "/sim/student/{uid}", c_get_student),
        ("GET", "/sim/student/{uid}/plan", c_plan),
        ("POST", "/sim/utbildningstillfalle", c_create_tillfalle),
        ("GET", "/sim/utbildningstillfalle/{uid}", c_get_tillfalle),
        ("POST", "/sim/utbildningstillfalle/{uid}/installt", c_installt),
        ("POST", "/sim/utbildningstillfalle/{uid}/utannonsera", c_utannonsera),
        ("POST", "/sim/registrering", c_registrera), ("POST", "/sim/resultat", c_resultat),
        ("POST", "/sim/tillgodoraknande", c_tillgodo), ("POST", "/sim/avbrott", c_avbrott),
        ("POST", "/sim/uppehall", c_uppehall), ("POST", "/sim/bevis", c_bevis), ("POST", "/sim/aterbud", c_aterbud),
        ("POST", "/sim/student/aterbud", c_student_aterbud),
        ("GET", "/sim/installningar", c_installningar), ("POST", "/sim/installningar", c_installningar),
        ("GET", "/sim/tillfallesantagning/{uid}", c_get_antagning),
        ("GET", "/sim/tillfallesantagning/anmalningsnummer/{nr}", c_antagning_by_anmalningsnummer),
        ("DELETE", "/sim/tillfallesantagning/{uid}/behorighetsvillkor/{kod}", c_villkor_manuellt),
        ("POST", "/sim/feed/prune", c_prune), ("POST", "/sim/feed/generate", c_generate),
        ("GET", "/sim/feed/stats", c_feed_stats), ("POST", "/sim/feed/raw", c_feed_raw),
    ]
    created = {c_create_student, c_create_tillfalle, c_registrera, c_resultat, c_tillgodo, c_uppehall, c_bevis}
    routes += [Route(path, control(fn, 201 if fn in created else 200), methods=[method]) for method, path, fn in ctl]
    app = Starlette(routes=routes)
    app.state.ladok = state
    return app
