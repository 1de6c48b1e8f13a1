"""Starlette app of the Ladok simulator: Ladok3 REST (XML) at the paths the public clients use, the
Atom feed at ``/uppfoljning/feed``, and ``/sim/`` control (JSON).

See docs/contracts/ladok.md for the exact contract: the app serves only what it lists. Requests
are parsed with ``brygga.xmlsafe``; every XML response validates against the public Ladok3 XSDs
(``schemas/ladok``). A refusal is a ``base:LadokException`` (a placement a rule stops: an
``sd:Regelresultat`` with the rule's ``base:Hinder``).
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
from simulators.faults import FaultMiddleware
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


def _refusal(e: LadokError, service: str, rule_result: bool = False) -> Response:
    """A rule that stops an åtgärd as its rule result (``rule_result``), anything else as Ladok's
    ``base:LadokException``."""
    if rule_result and e.status == 409:
        return _xml(rep.regelresultat(e), service, e.status)
    return _xml(rep.ladok_exception(e), service, e.status)


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


def rest(service: str, *, rule_result: bool = False, params: tuple[str, ...] | None = None):
    """Decorator: run ``fn(state, request)`` and render ``LadokError`` as Ladok does (see
    ``_refusal``). ``params``: the query parameters the resource takes (others are refused)."""
    def wrap(fn: Callable):
        async def endpoint(request: Request) -> Response:
            try:
                if params is not None:
                    unknown = sorted(set(request.query_params) - set(params))
                    if unknown:
                        raise LadokError(400, "commons.fel.ogiltig.parameter",
                                         f"Okänd parameter: {', '.join(unknown)}")
                return await fn(request.app.state.ladok, request)
            except LadokError as e:
                return _refusal(e, service, rule_result)
        return endpoint
    return wrap


def _ints(r: Request, name: str) -> list[int]:
    try:
        return [int(v) for v in r.query_params.getlist(name)]
    except ValueError:
        raise LadokError(400, "commons.fel.ogiltig.parameter", f"{name} ska vara ett heltal") from None


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


FILTRERA_PARAMS = ("utbildningstypID", "studieordningID", "benamning", "studieperiod", "startperiodID", "page", "limit",
                   "skipCount", "onlyCount", "sprakkod", "utbildningstillfallestypID", "utbildningstillfalleskod",
                   "utbildningskod", "organisationUID", "status", "antagningsomgang")


@rest("utbildningsinformation", params=FILTRERA_PARAMS)
async def filtrera(s: LadokState, r: Request) -> Response:
    """``filtrera`` with the parameters ati-ladok3-rest-client sends; ``antagningsomgang`` is
    Brygga's own (to confirm). ``onlyCount``: the total only; ``skipCount``: no total (0)."""
    qp = r.query_params
    startperiod = None
    if qp.get("startperiodID"):
        (pid,) = _ints(r, "startperiodID")
        startperiod = s.period_kod(pid) or "-"
    total, hits = s.filtrera(antagningsomgang=qp.get("antagningsomgang"),
                             tillfalleskod=qp.getlist("utbildningstillfalleskod"),
                             utbildningskod=qp.getlist("utbildningskod"), startperiod=startperiod,
                             organisation=qp.getlist("organisationUID"), status=_ints(r, "status"),
                             page=_int(r, "page", 1, 1, 10**9), limit=_int(r, "limit", 400, 1, 1000))
    if qp.get("onlyCount") == "true":
        hits = []
    if qp.get("skipCount") == "true":
        total = 0
    return _xml(rep.sokresultat(total, hits, _base(r)), "utbildningsinformation")


# --- studiedeltagande ---------------------------------------------------------------------
DELTAGARE_PARAMS = ("deltagaretillstand", "page", "limit", "orderBy")
ORDER_BY = {f"{f}_{d}" for f in ("FORNAMN", "EFTERNAMN", "PERSONNUMMER", "UTBILDNINGSKOD") for d in ("ASC", "DESC")}
TILLSTAND_ENUM = {"EJ_PABORJAD", "PAGAENDE", "REGISTRERAD", "PAGAENDE_MED_SPARR", "AVBROTT", "AVKLARAD",
                  "EJ_PAGAENDE_TILLFALLESBYTE", "UPPEHALL", "ATERBUD", "EJ_PAGAENDE_INAKTIVITET", "PABORJAD",
                  "FORVANTAD_DELTAGARE"}


def _deltagare(s: LadokState, r: Request, uids: list[str]) -> Response:
    states = r.query_params.getlist("deltagaretillstand")
    if any(x not in TILLSTAND_ENUM for x in states):
        raise LadokError(400, "commons.fel.ogiltig.parameter", "deltagaretillstand: okänt tillstånd")
    order = r.query_params.get("orderBy")
    if order is not None and order not in ORDER_BY:
        raise LadokError(400, "commons.fel.ogiltig.parameter", "orderBy: okänd sortering")
    total, hits = s.deltagare(uids, tillstand=states, page=_int(r, "page", 1, 1, 10**9),
                              limit=_int(r, "limit", 400, 1, 5000))
    with s.lock:
        root = rep.deltagare_sokresultat(total, hits, s.students)
    return _xml(root, "studiedeltagande")


@rest("studiedeltagande", params=("kurstillfalleUID", "kanRegistreraPaPeriod", *DELTAGARE_PARAMS))
async def deltagare(s: LadokState, r: Request) -> Response:
    """Participants of course instances (``kurstillfalleUID`` repeated), in the states asked
    (``deltagaretillstand`` repeated; none: every state), paged."""
    uids = r.query_params.getlist("kurstillfalleUID")
    if not uids or len(uids) > 1000:
        raise LadokError(400, "commons.fel.ogiltig.parameter", "kurstillfalleUID: 1 till 1000 tillfällen")
    with s.lock:
        if any(s.tillfallen.get(u) is not None and s.tillfallen[u].utbildning.typ != "kurs" for u in uids):
            raise LadokError(400, "commons.fel.ogiltig.parameter", "kurstillfalleUID: ett kurspaketeringstillfälle")
    return _deltagare(s, r, uids)


@rest("studiedeltagande", params=DELTAGARE_PARAMS)
async def deltagare_paket(s: LadokState, r: Request) -> Response:
    """Participants of a programme instance (kurspaketeringstillfälle)."""
    t = s.tillfalle(r.path_params["uid"])
    if t.utbildning.typ != "program":
        raise LadokError(404, "kurspaketeringstillfalle.hittades.ej", "Tillfället är inte ett kurspaketeringstillfälle")
    return _deltagare(s, r, [t.uid])


@rest("studiedeltagande")
async def get_plan(s: LadokState, r: Request) -> Response:
    uid = r.path_params["uid"]
    with s.lock:
        s.student(uid)
        root = rep.studieplan(s.plan.get(uid, []), _base(r))
    return _xml(root, "studiedeltagande")


@rest("studiedeltagande", rule_result=True)
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
        tp = r.headers.get("traceparent")
        if tp:  # W3C Trace Context as a client sends it (the simulator only records it, per Anmalningsnummer)
            s.traceparents.setdefault(p.anmalningsnummer, []).append(tp)
        body = rep.tillfallesantagning(a, _base(r))
    return _xml(body, "studiedeltagande", 201 if created else 200)


@rest("studiedeltagande")
async def get_villkor(s: LadokState, r: Request) -> Response:
    with s.lock:
        return _xml(rep.villkor(s.antagning(r.path_params["uid"])), "studiedeltagande")


@rest("studiedeltagande")
async def post_villkor(s: LadokState, r: Request) -> Response:
    """One villkor put on the tillfällesantagning: ``sd:SkapaBehorighetsvillkor`` (Brygga's own
    path: to confirm); the list now there."""
    root = await _body(r)
    if root.tag != q("sd:SkapaBehorighetsvillkor"):
        raise LadokError(400, "commons.fel.fel.rotelement", "Rotelementet ska vara sd:SkapaBehorighetsvillkor")
    kod, typ = _text(root, "sd:ExternTextUID"), _text(root, "sd:Behorighetsvillkorstyp")
    if not kod or not typ:
        raise LadokError(400, "studiedeltagande.behorighetsvillkor.ofullstandigt",
                         "Behörighetsvillkor kräver ExternTextUID och Behorighetsvillkorstyp")
    with s.lock:
        return _xml(rep.villkor(s.lagg_till_villkor(r.path_params["uid"], kod, typ)), "studiedeltagande", 201)


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
async def get_avbrott(s: LadokState, r: Request) -> Response:
    """The avbrott on an admission (not an early one: that is a withdrawn registration, no avbrott)."""
    with s.lock:
        a = s.antagning(r.path_params["uid"])
        if a.avbrott is None or a.avbrott.tidigt:
            raise LadokError(404, "avbrott.hittades.ej", f"Tillfällesantagning {a.uid} har inget avbrott")
        return _xml(rep.avbrott(a), "studiedeltagande")


@rest("studiedeltagande")
async def get_uppehall(s: LadokState, r: Request) -> Response:
    """The study breaks on an admission (a programme's), oldest first."""
    with s.lock:
        a = s.antagning(r.path_params["uid"])
        rows = sorted((u for u in s.uppehall_by_uid.values() if u.antagning is a), key=lambda u: (u.start, u.uid))
        return _xml(rep.uppehallslista(rows), "studiedeltagande")


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
    """A student's issued certificates, removed ones marked (Brygga's own path: to confirm)."""
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
    """A student's credit transfers (Brygga's own path: to confirm)."""
    uid = r.path_params["uid"]
    with s.lock:
        s.student(uid)
        return _xml(rep.tillgodoraknanden(s.tillgodo.get(uid, [])), "resultat")


# --- kataloginformation --------------------------------------------------------------------------
@rest("kataloginformation")
async def get_betygsskalor(s: LadokState, r: Request) -> Response:
    with s.lock:
        return _xml(rep.betygsskalor(s.betygsskalor), "kataloginformation")


@rest("kataloginformation")
async def get_perioder(s: LadokState, r: Request) -> Response:
    return _xml(rep.perioder(s.perioder()), "kataloginformation")


@rest("kataloginformation")
async def get_autentiserad(s: LadokState, r: Request) -> Response:
    return _xml(rep.anvandare(s.integration_uid, s.integration_anvandarnamn), "kataloginformation")


@rest("kataloginformation")
async def get_egna(s: LadokState, r: Request) -> Response:
    with s.lock:
        profiles = [(uid, namn, status) for uid, (namn, status, _) in s.behorighetsprofiler.items()]
    return _xml(rep.anvandarbehorigheter(profiles, s.integration_uid), "kataloginformation")


@rest("kataloginformation")
async def get_behorighetsprofil(s: LadokState, r: Request) -> Response:
    with s.lock:
        p = s.behorighetsprofiler.get(r.path_params["uid"])
        if p is None:
            raise LadokError(404, "kataloginformation.behorighetsprofil.hittades.ej", "Behörighetsprofilen finns inte")
        namn, _, aktiviteter = p
        return _xml(rep.behorighetsprofil(namn, dict(aktiviteter)), "kataloginformation")


# --- feed -----------------------------------------------------------------------------------
async def feed_page(request: Request) -> Response:
    which = request.path_params["n"]
    if which not in ("recent", "first") and not which.isdigit():
        return Response("no such feed page", status_code=404, media_type="text/plain")
    return _feed(request, which if not which.isdigit() else int(which))


def _feed(request: Request, n: int | str | None) -> Response:
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
    """A module result (``modulkod``) or, without one, the grade on the whole course."""
    res = s.rapportera_resultat(_antagning_uid(s, b), b.get("modulkod"), b["betyg"],
                                _d(b, "examinationsdatum", dt.date.today()), b.get("betygsskala_id"))
    return {"uid": res.uid, "modul_uid": res.modul.uid if res.modul else None, "betygsgrad_id": res.betygsgrad_id,
            "betygsskala_id": res.betygsskala_id}


def c_makulera(s, r, b):
    s.makulera_resultat(r.path_params["uid"])
    return {"makulerat": r.path_params["uid"]}


def c_betygsskala(s, r, b):
    """A new grade scale in grunddata: ``{id, kod, grader: {betyg: [id, giltig_som_slutbetyg]}}``."""
    s.lagg_till_betygsskala(int(b["id"]), b["kod"], {k: (int(v[0]), bool(v[1])) for k, v in b["grader"].items()})
    return {"betygsskalor": sorted(s.betygsskalor)}


def c_personnummer(s, r, b):
    return _student_json(s.byt_personnummer(r.path_params["uid"], b["personnummer"]))


def c_skydda(s, r, b):
    return _student_json(s.skydda(r.path_params["uid"]))


def c_epost(s, r, b):
    return _student_json(s.andra_epost(r.path_params["uid"], b.get("epost")))


def c_omregistrera(s, r, b):
    with s.lock:
        return s.omregistrera(_antagning_uid(s, b), b["nytt_utbildningstillfalle_uid"], _d(b, "datum", None)
                              if b.get("datum") else None).json()


def c_forvantat_borttag(s, r, b):
    return s.ta_bort_forvantat_deltagande(_antagning_uid(s, b), av_student=bool(b.get("av_student"))).json()


def c_avbrott_borttag(s, r, b):
    return s.ta_bort_avbrott(_antagning_uid(s, b)).json()


def c_tillgodo_borttag(s, r, b):
    s.ta_bort_tillgodoraknande(r.path_params["uid"])
    return {"borttaget": r.path_params["uid"]}


def c_uppehall_borttag(s, r, b):
    s.ta_bort_uppehall(r.path_params["uid"])
    return {"borttaget": r.path_params["uid"]}


def c_bevis_borttag(s, r, b):
    s.ta_bort_bevis(r.path_params["uid"])
    return {"borttaget": r.path_params["uid"]}


def c_ateraktivera(s, r, b):
    return s.ateraktivera(r.path_params["uid"]).json()


def c_uppdatera(s, r, b):
    return s.uppdatera_tillfalle(r.path_params["uid"], start=_d(b, "start") if b.get("start") else None,
                                 slut=_d(b, "slut") if b.get("slut") else None, takt=b.get("studietakt"),
                                 studielokalisering_id=b.get("studielokalisering_id")).json()


def c_behorigheter(s, r, b):
    """The integration certificate's rights: ``{aktiviteter: [id, ...], status?}`` replaces its
    profile's system activities (a Ladok administrator changing the profile)."""
    with s.lock:
        ((uid, (namn, status, akt)),) = s.behorighetsprofiler.items()
        if r.method == "POST":
            akt = dict.fromkeys((int(x) for x in b.get("aktiviteter", list(akt))), "rattighetsniva.las")
            s.behorighetsprofiler[uid] = (namn, b.get("status", status), akt)
        return {"profil": uid, "status": s.behorighetsprofiler[uid][1], "aktiviteter": sorted(akt)}


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
        Route("/studiedeltagande/studiestruktur/student/{uid}", get_plan),
        Route("/studiedeltagande/deltagare/kurstillfalle", deltagare),
        Route("/studiedeltagande/deltagare/kurspaketeringstillfalle/{uid}", deltagare_paket),
        Route("/studiedeltagande/tillfallesantagning", post_antagning, methods=["POST"]),
        Route("/studiedeltagande/behorighetsvillkor/tillfallesantagning/{uid}", get_villkor),
        Route("/studiedeltagande/behorighetsvillkor/tillfallesantagning/{uid}", post_villkor, methods=["POST"]),
        Route("/studiedeltagande/behorighetsvillkor/tillfallesantagning/{uid}/{kod}", delete_villkor,
              methods=["DELETE"]),
        Route("/studiedeltagande/tillfallesantagning/{uid}/aterbud", post_aterbud, methods=["POST"]),
        Route("/studiedeltagande/tillfallesantagning/{uid}/avbrott", post_avbrott, methods=["POST"]),
        Route("/studiedeltagande/tillfallesantagning/{uid}/avbrott", get_avbrott, methods=["GET"]),
        Route("/studiedeltagande/tillfallesantagning/{uid}/uppehall", get_uppehall, methods=["GET"]),
        Route("/studiedeltagande/tillfallesantagning/{uid}/aterbud", get_aterbud, methods=["GET"]),
        Route("/examen/utfardatbevis/filtrera", filtrera_bevis),
        Route("/examen/utfardatbevis/student/{uid}", get_bevis_student),
        Route("/examen/utfardatbevis/{uid}", get_bevis),
        Route("/resultat/studieresultat/resultat/student/{uid}", get_resultat),
        Route("/resultat/tillgodoraknande/student/{uid}", get_tillgodo),
        Route("/kataloginformation/grunddata/betygsskala", get_betygsskalor),
        Route("/kataloginformation/grunddata/period", get_perioder),
        Route("/kataloginformation/anvandare/autentiserad", get_autentiserad),
        Route("/kataloginformation/anvandarbehorighet/egna", get_egna),
        Route("/kataloginformation/behorighetsprofil/{uid}", get_behorighetsprofil),
        Route("/uppfoljning/feed/{n}", feed_page),
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
        ("POST", "/sim/resultat/{uid}/makulera", c_makulera), ("POST", "/sim/betygsskala", c_betygsskala),
        ("POST", "/sim/student/{uid}/personnummer", c_personnummer), ("POST", "/sim/student/{uid}/skydda", c_skydda),
        ("POST", "/sim/student/{uid}/kontaktuppgifter", c_epost), ("POST", "/sim/omregistrering", c_omregistrera),
        ("POST", "/sim/forvantat-deltagande/borttag", c_forvantat_borttag),
        ("POST", "/sim/avbrott/borttag", c_avbrott_borttag),
        ("POST", "/sim/tillgodoraknande/{uid}/borttag", c_tillgodo_borttag),
        ("POST", "/sim/uppehall/{uid}/borttag", c_uppehall_borttag), ("POST", "/sim/bevis/{uid}/borttag", c_bevis_borttag),
        ("POST", "/sim/utbildningstillfalle/{uid}/ateraktivera", c_ateraktivera),
        ("POST", "/sim/utbildningstillfalle/{uid}/uppdatera", c_uppdatera),
        ("GET", "/sim/behorigheter", c_behorigheter), ("POST", "/sim/behorigheter", c_behorigheter),
        ("POST", "/sim/feed/prune", c_prune), ("POST", "/sim/feed/generate", c_generate),
        ("GET", "/sim/feed/stats", c_feed_stats), ("POST", "/sim/feed/raw", c_feed_raw),
    ]
    created = {c_create_student, c_create_tillfalle, c_registrera, c_resultat, c_tillgodo, c_uppehall, c_bevis}
    routes += [Route(path, control(fn, 201 if fn in created else 200), methods=[method]) for method, path, fn in ctl]
    app = Starlette(routes=routes)
    app.state.ladok = state
    app.add_middleware(FaultMiddleware)  # the fault plan (issue 33): POST /sim/faults
    return app
