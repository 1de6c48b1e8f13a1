"""Ladok: REST resources (``application/vnd.ladok-<service>+xml``) and the Atom event feed, as the
public record shows them (docs/contracts/ladok.md lists every resource with its source).

Every path is built here, in one place. Where the public record is silent (the writes: placing an
admission, återbud, avbrott, behörighetsvillkor; the student search by many personnummer; the
instance search by admission round; the degree search), the path is Brygga's design and marked
"to confirm against Ladok" in the contract.

A refusal is read from what Ladok answers (``mappings/ladok/errors.py``) and classified:

* **transient** — Ladok failed (5xx, ``commons.fel.kategori.applikationsfel``), was busy or
  limited us (408/425/429): a retry later can help (``PeerError`` with ``transient``);
* **hinder** — a business rule stops it: a rule result's ``base:Hinder`` (``sd:Regelresultat``) or a
  ``LadokException`` of the rule groups (``commons.fel.grupp.domanregel``/``felaktig_status``),
  keyed by its I18nNyckel/Detaljkod (``Refused`` with a ``Hinder``; an unknown key is the flows'
  ``ovrigt`` with its raw text);
* **refused** — anything else (validation, permission, a missing object): permanent
  (``LadokError``, the FelUID and texts in its message).
"""

from __future__ import annotations

import datetime as dt
import re
import threading
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any, TypeVar

from adapters.http import (
    PeerError,
    Response,
    TransportError,
    UnreadableReply,
    reading,
    retry_after,
    segment,
    session,
    status_error,
    transport_error,
)
from adapters.http.errors import TRANSIENT_STATUS
from brygga import personnummer as pnr_mod
from brygga import xmlsafe
from brygga.config import LadokSettings, PeerConfig, settings_as
from brygga.logmask import get_logger
from brygga.records import (
    FeedPage,
    GradeScale,
    Hinder,
    LadokEvent,
    LadokFel,
    LadokUser,
    Participant,
    Placement,
    PlanNode,
    Student,
    Utbildningstillfalle,
)
from mappings import registry
from mappings.base import RecordError
from mappings.ladok.events import MAX_PAGE_BYTES

log = get_logger("adapters.ladok")
T = TypeVar("T")

ACCEPT = {s: f"application/vnd.ladok-{s}+xml" for s in
          ("studentinformation", "studiedeltagande", "utbildningsinformation", "resultat", "examen",
           "kataloginformation")}
ATOM = "application/atom+xml"

#: Felgrupp of a LadokException that a business rule raised (lms2's ladokGenericErrorHandler
#: treats the first three as rule errors), or that says what the request names is not there
#: (obligatoriskt_varde_saknas: "the course round doesn't exist" in KTH's transfer-to-ladok): the
#: request is refused by the state of Ladok's data, read as a hinder an operator can act on.
RULE_GROUPS = frozenset({"commons.fel.grupp.domanregel", "commons.fel.grupp.felaktig_status",
                         "commons.fel.grupp.felaktigt_varde", "commons.fel.grupp.obligatoriskt_varde_saknas"})
TRANSIENT_CATEGORIES = frozenset({"commons.fel.kategori.applikationsfel"})

#: Participant states asked for (sd:DeltagaretillstandEnum); every state the schedule export and
#: the archive read: admitted, registered, gone (återbud, avbrott), done.
DELTAGARETILLSTAND = ("EJ_PABORJAD", "FORVANTAD_DELTAGARE", "PABORJAD", "REGISTRERAD", "PAGAENDE",
                      "PAGAENDE_MED_SPARR", "ATERBUD", "AVBROTT", "AVKLARAD", "UPPEHALL",
                      "EJ_PAGAENDE_TILLFALLESBYTE", "EJ_PAGAENDE_INAKTIVITET")
ORDER_BY = "EFTERNAMN_ASC"  # paging is only stable with an order (KTH/transfer-to-ladok's note)


class FeedGone(PeerError):
    """The requested archive page no longer exists (the feed has moved on)."""


class UnreadablePage(UnreadableReply):
    """A feed page Ladok served that cannot be read (not well-formed, a DTD, over the size
    limit). ``page`` is its number (None: ``recent``), ``size`` its length, ``excerpt`` the bytes
    around where the parser stopped (for the quarantine row)."""

    def __init__(self, page: int | None, error: Exception, size: int, excerpt: bytes):
        super().__init__("ladok", f"feed page {page or 'recent'}", error, transient=False, read_bytes=size)
        self.page, self.size, self.excerpt = page, size, excerpt


MAX_FEED_PAGE = MAX_PAGE_BYTES  # a reply larger than this is not a feed page


def _excerpt(data: bytes, error: Exception, width: int = 32 * 1024) -> bytes:
    """The bytes around the line the parser names ("line N, column M"), else the head."""
    m = re.search(r"line (\d+), column (\d+)", str(error))
    at = 0
    if m:
        line, at = int(m.group(1)), 0
        for _ in range(line - 1):
            nl = data.find(b"\n", at)
            if nl < 0:
                break
            at = nl + 1
        at += int(m.group(2))
    start = max(0, min(at, len(data)) - width // 2)
    return data[start:start + width]


class Refused(PeerError):
    """A business rule of Ladok's stops the request: ``hinder.key`` names the rule (a rule
    result's I18nNyckel or a LadokException's Detaljkod), ``hinder.text`` Ladok's words."""

    def __init__(self, hinder: Hinder, status: int):
        uid = f" (FelUID {hinder.fel_uid})" if hinder.fel_uid else ""
        super().__init__("ladok", f"{status} {hinder.key}: {hinder.text}{uid}", status=status)
        self.hinder = hinder


class LadokError(PeerError):
    """Ladok refused or failed the request with a ``LadokException`` that is not a rule's: ``fel``
    has its codes, texts and FelUID."""

    def __init__(self, what: str, status: int, fel: LadokFel, *, transient: bool, retry_after: float | None = None):
        super().__init__("ladok", f"{what}: HTTP {status}: {fel.describe()}", status=status, transient=transient,
                         retry_after=retry_after)
        self.fel = fel


def classify(status: int, fel: LadokFel) -> str:
    """``transient``, ``hinder`` or ``refused`` for a LadokException answered with ``status``."""
    if status >= 500 or status in TRANSIENT_STATUS or fel.felkategori in TRANSIENT_CATEGORIES:
        return "transient"
    if fel.felgrupp in RULE_GROUPS:
        return "hinder"
    return "refused"


def _tail(url: str) -> str:
    """A feed link's page: ``recent``, ``first`` or the number (its last path segment)."""
    return url.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]


class LadokAdapter:
    def __init__(self, peer: PeerConfig, *, mappings: dict[str, int] | None = None):
        self.peer = peer
        self.base = peer.base_url.rstrip("/")
        self.http = session(peer)
        self.settings = settings_as(peer, LadokSettings)
        self.feed_base = self.base + "/" + self.settings.feed_path.strip("/")
        m = mappings if mappings is not None else peer.mappings
        self.events = registry.select("ladok", "events", m)
        self.students = registry.select("ladok", "student", m)
        self.tillfallen = registry.select("ladok", "utbildningstillfalle", m)
        self.placements = registry.select("ladok", "placement", m)
        self.plans = registry.select("ladok", "studieplan", m)
        self.conditions = registry.select("ladok", "villkor", m)
        self.aterbud_mapping = registry.select("ladok", "aterbud", m)
        self.deltagare = registry.select("ladok", "deltagare", m)
        self.errors = registry.select("ladok", "error", m)
        self.katalog = registry.select("ladok", "kataloginformation", m)
        self.merit_snapshot = registry.select("ladok", "merit-snapshot", m)
        self._no_student_search = False  # set when Ladok answers the student search with 404/405
        self._periods: dict[str, str] | None = None
        self._periods_lock = threading.Lock()

    @property
    def concurrency(self) -> int:
        """Concurrent GETs a bulk read may make (the Connection's ``concurrency``)."""
        return self.settings.concurrency

    # ------------------------------------------------------------------ plumbing
    def _request(self, method: str, path: str, service: str, *, ok: tuple[int, ...] = (200,),
                 traceparent: str | None = None, **kw: Any) -> Response:
        accept = ATOM if service == "uppfoljning" else ACCEPT.get(service, "application/xml")
        headers = {"Accept": accept}
        if traceparent:  # W3C Trace Context: the record's trace follows it into Ladok
            headers["traceparent"] = traceparent
        if "data" in kw:
            headers["Content-Type"] = accept + ";charset=UTF-8"
        url = path if path.startswith("http") else self.base + path
        try:
            r = self.http.request(method, url, headers=headers, timeout=self.peer.timeout, **kw)
        except TransportError as e:
            raise transport_error("ladok", e) from None
        if r.status_code in ok:
            return r
        raise self._error(f"{method} {path}", r)

    def _error(self, what: str, r: Response) -> PeerError:
        """What a reply that is not the answer asked for means (see the module's classes)."""
        body = r.content  # the (small) error body, read whole: the connection is released
        err = self.errors.read(body) if body else None
        after = retry_after(r.headers.get("retry-after"))
        if isinstance(err, Hinder):
            if r.status_code >= 500:
                return PeerError("ladok", f"{what}: HTTP {r.status_code}: {err.key}", status=r.status_code,
                                 transient=True, retry_after=after)
            return Refused(err, r.status_code)
        if isinstance(err, LadokFel):
            kind = classify(r.status_code, err)
            if kind == "hinder":
                return Refused(Hinder(key=err.detaljkod or err.felgrupp or "", text=err.detaljkod_text or
                                      err.meddelande or err.felgrupp_text or "", fel_uid=err.fel_uid), r.status_code)
            return LadokError(what, r.status_code, err, transient=kind == "transient", retry_after=after)
        return status_error("ladok", what, r.status_code, r.headers)

    def _read(self, operation: str, read: Callable[[bytes], T], data: bytes) -> T:
        """A reply read by its mapping; one that cannot be read is an ``UnreadableReply``."""
        with reading("ladok", operation, len(data)):
            return read(data)

    def _get(self, operation: str, path: str, service: str, read: Callable[[bytes], T]) -> T:
        return self._read(operation, read, self._request("GET", path, service).content)

    # ------------------------------------------------------------------ feed
    def feed_page(self, number: int | None = None, *, url: str | None = None, first: bool = False) -> FeedPage:
        """``recent`` (no argument), ``first`` (the oldest page served), page ``number``, or the page
        a link names (``url``: its last segment, read at this Connection's feed path). A pruned
        archive page raises FeedGone."""
        which = _tail(url) if url else "first" if first else str(number) if number is not None else "recent"
        if not (which in ("recent", "first") or which.isdigit()):
            raise PeerError("ladok", f"feed link {url!r} names no page")
        try:
            r = self._request("GET", f"{self.feed_base}/{which}", "uppfoljning", stream=True)
        except Refused as e:
            raise FeedGone("ladok", f"feed page {which} is gone", status=e.status) from None
        except PeerError as e:
            if e.status in (404, 410):
                raise FeedGone("ladok", f"feed page {which} is gone", status=e.status) from None
            raise
        n = int(which) if which.isdigit() else None
        try:
            data = r.raw.read(MAX_FEED_PAGE + 1)
        except TransportError as e:
            raise transport_error("ladok", e) from None
        finally:
            r.close()
        try:
            if len(data) > MAX_FEED_PAGE:
                raise xmlsafe.MalformedXML(f"larger than {MAX_FEED_PAGE} bytes: not a feed page")
            return self.events.read_page(data)
        except xmlsafe.UnreadableXML as e:
            raise UnreadablePage(n, e, len(data), _excerpt(data, e)) from e

    # ------------------------------------------------------------------ kataloginformation
    def grade_scales(self) -> list[GradeScale]:
        """Every grade scale with its grades (grunddata ``betygsskala``)."""
        return self._get("grade_scales", "/kataloginformation/grunddata/betygsskala", "kataloginformation",
                         self.katalog.read_grade_scales)

    def period_id(self, term: str) -> str | None:
        """The grunddata period ID of a term code (``HT2027``), for searches by ``startperiodID``;
        the periods are read once per adapter."""
        with self._periods_lock:
            if self._periods is None:
                self._periods = self._get("periods", "/kataloginformation/grunddata/period", "kataloginformation",
                                          self.katalog.read_periods)
            return self._periods.get(term)

    def user(self, *, rights: bool = True) -> LadokUser:
        """Who the client certificate is (``anvandare/autentiserad``: the authenticated probe)
        and, with ``rights``, what it may do: its active profiles (``anvandarbehorighet/egna``) and
        the system activities they grant (``behorighetsprofil/{uid}``)."""
        who = self._get("user", "/kataloginformation/anvandare/autentiserad", "kataloginformation",
                        self.katalog.read_user)
        if not rights:
            return who
        profiles = self._get("own_rights", "/kataloginformation/anvandarbehorighet/egna", "kataloginformation",
                             self.katalog.read_own_profiles)
        activities: dict[int, str] = {}
        for uid, _, status in profiles:
            if status and status != "AKTIV":
                continue
            for aid, level in self._get("profile", f"/kataloginformation/behorighetsprofil/{segment(uid)}",
                                        "kataloginformation", self.katalog.read_profile).items():
                activities.setdefault(aid, level)
        return LadokUser(who.uid, who.username, who.larosate_id, tuple(profiles), activities)

    # ------------------------------------------------------------------ catalogue
    def tillfalle(self, uid: str) -> Utbildningstillfalle:
        t = self.tillfalle_or_error(uid)
        if not isinstance(t, Utbildningstillfalle):
            raise PeerError("ladok", f"utbildningstillfalle {uid}: " + ("not found" if t is None else str(t)),
                            status=404 if t is None else None)
        return t

    def tillfalle_or_error(self, uid: str) -> Utbildningstillfalle | RecordError | None:
        """One instance; None when Ladok has no such instance (404); a RecordError naming the
        instance when its reply cannot be read or breaks the rules (a transient failure raises)."""
        r = self._request("GET", f"/utbildningsinformation/utbildningstillfalle/{segment(uid)}",
                          "utbildningsinformation", ok=(200, 404))
        if r.status_code == 404:
            _ = r.content  # release the connection
            return None
        try:
            found = list(self.tillfallen.read(r.content))
        except xmlsafe.UnreadableXML as e:
            return RecordError(uid[:64], "reply", f"unreadable: {e}"[:300], "Utbildningstillfalle")
        if len(found) != 1:
            return RecordError(uid[:64], "reply", f"{len(found)} ui:Utbildningstillfalle in the reply, 1 expected",
                               "Utbildningstillfalle")
        t = found[0]
        if isinstance(t, Utbildningstillfalle) and t.uid != uid:
            return RecordError(uid[:64], "Uid", f"the reply is instance {t.uid[:64]!r}", "Utbildningstillfalle")
        return t

    def search_tillfallen(self, *, round_code: str | None = None, tillfalleskod: str | None = None,
                          utbildningskod: str | None = None, startperiod: str | None = None,
                          organisation_uid: str | None = None, limit: int = 400) -> Iterator[str]:
        """Uids of matching instances, all pages (``filtrera``). ``startperiod`` is a term code
        (``HT2027``), asked as its grunddata ``startperiodID``; a term Ladok has no period for
        matches nothing. ``round_code`` (``antagningsomgang``) is Brygga's own parameter: to
        confirm against Ladok (no public client filters by round)."""
        params: list[tuple[str, Any]] = [(k, v) for k, v in (
            ("antagningsomgang", round_code), ("utbildningstillfalleskod", tillfalleskod),
            ("utbildningskod", utbildningskod), ("organisationUID", organisation_uid)) if v]
        if startperiod:
            pid = self.period_id(startperiod)
            if pid is None:
                log.warning("Ladok has no period %s: no instance starts in it", startperiod)
                return
            params.append(("startperiodID", pid))
        page, seen = 1, 0
        while True:
            r = self._request("GET", "/utbildningsinformation/utbildningstillfalle/filtrera", "utbildningsinformation",
                              params=[*params, ("page", page), ("limit", limit)])
            total, uids = self._read("search_tillfallen", self.tillfallen.read_search, r.content)
            yield from uids
            seen += len(uids)
            if not uids or seen >= total:
                return
            page += 1

    def participants(self, instances: list[Utbildningstillfalle], *, limit: int = 2000) -> Iterator[Any]:
        """Participants (``Participant``, or ``RecordError`` for one Ladok sent that breaks the
        rules) of the instances, every state, all pages: the course instances together
        (``deltagare/kurstillfalle?kurstillfalleUID=…``), each programme on its own
        (``deltagare/kurspaketeringstillfalle/{uid}``)."""
        courses = [t.uid for t in instances if not t.is_programme]
        states = [("deltagaretillstand", s) for s in DELTAGARETILLSTAND]
        if courses:
            yield from self._participant_pages("/studiedeltagande/deltagare/kurstillfalle",
                                               [("kurstillfalleUID", u) for u in courses] + states, limit)
        for t in instances:
            if t.is_programme:
                yield from self._participant_pages(f"/studiedeltagande/deltagare/kurspaketeringstillfalle/"
                                                   f"{segment(t.uid)}", states, limit)

    def _participant_pages(self, path: str, params: list[tuple[str, Any]], limit: int) -> Iterator[Any]:
        page, seen = 1, 0
        while True:
            r = self._request("GET", path, "studiedeltagande",
                              params=[*params, ("orderBy", ORDER_BY), ("limit", limit), ("page", page)])
            total, hits = self._read("participants", self.deltagare.read_search, r.content)
            yield from hits
            seen += len(hits)
            if not hits or seen >= total:
                return
            page += 1

    def email(self, student_uid: str) -> str | None:
        """The student's e-mail address from si:Kontaktuppgifter (None: Ladok has none). A reply
        that cannot be read, or an address that is not one, raises a permanent UnreadableReply."""
        r = self._request("GET", f"/studentinformation/student/{segment(student_uid)}/kontaktuppgifter",
                          "studentinformation")
        try:
            return self.deltagare.read_email(r.content)
        except (xmlsafe.UnreadableXML, ValueError) as e:
            raise UnreadableReply("ladok", "kontaktuppgifter", e, transient=False, read_bytes=len(r.content)) from None

    # ------------------------------------------------------------------ students
    def student_by_personnummer(self, personnummer: str) -> Student | None:
        # 404 = not a student (yet): the common answer when admitting new students, so it is taken
        # as an answer, not raised.
        r = self._request("GET", f"/studentinformation/student/personnummer/{segment(personnummer)}", "studentinformation",
                          ok=(200, 404))
        if r.status_code == 404:
            _ = r.content  # release the connection
            return None
        return self._read("student_by_personnummer", self.students.read, r.content)

    def students_by_personnummer(self, pnrs: list[str], *, batch: int = 200) -> dict[str, Student]:
        """The students among ``pnrs``, keyed by canonical personnummer; absent = not a student (yet).

        One ``filtrera`` request per ``batch`` numbers instead of one lookup each (the repeated
        ``personnummer`` parameter is Brygga's own: to confirm). Hits are matched by number, never
        by position, and only numbers asked for count; an invalid number cannot be a student and
        is not sent. A reply that claims more hits than numbers asked did not filter by them: its
        further pages, which would walk every student, are not fetched; the establishment's
        ``personnummer.finns`` path then finds those students one by one."""
        if not 1 <= batch <= 1000:
            raise ValueError("batch must be 1..1000 (Ladok's limit per search page)")
        numbers = list(dict.fromkeys(pnr_mod.canonical(p) for p in pnrs if pnr_mod.is_valid(p)))
        found: dict[str, Student] = {}
        if self._no_student_search:
            return self._students_one_by_one(numbers)
        for i in range(0, len(numbers), batch):
            chunk = numbers[i:i + batch]
            wanted = set(chunk)
            page, seen = 1, 0
            while True:
                try:
                    r = self._request("GET", "/studentinformation/student/filtrera", "studentinformation",
                                      params=[("personnummer", p) for p in chunk] + [("limit", batch), ("page", page)])
                except PeerError as e:
                    if e.status not in (404, 405, 501):
                        raise
                    log.warning("Ladok has no student search (HTTP %s): students are looked up one by one", e.status)
                    self._no_student_search = True
                    return {**found, **self._students_one_by_one(numbers[i:])}
                total, students = self._read("students_by_personnummer", self.students.read_search, r.content)
                found.update((s.personnummer, s) for s in students if s.personnummer in wanted)
                seen += len(students)
                if total > len(chunk):
                    log.warning("student search by %d personnummer claims %d hits: not filtered by them; "
                                "the rest are found when establishing meets personnummer.finns", len(chunk), total)
                    break
                if not students or seen >= total:
                    break
                page += 1
        return found

    def _students_one_by_one(self, numbers: list[str]) -> dict[str, Student]:
        found = {}
        for p in numbers:
            st = self.student_by_personnummer(p)
            if st is not None:
                found[p] = st
        return found

    def student(self, uid: str) -> Student:
        return self._get("student", f"/studentinformation/student/{segment(uid)}", "studentinformation",
                         self.students.read)

    def establish(self, student: Student) -> Student:
        """Establish a student (Brygga's own request: to confirm; real establishment goes through
        the Gemensam studenttjänst)."""
        r = self._request("POST", "/studentinformation/student", "studentinformation",
                          data=self.students.write(student), ok=(200, 201))
        return self._read("establish", self.students.read, r.content)

    # ------------------------------------------------------------------ study plan
    def place(self, placement: Placement) -> dict[str, str | None]:
        """Place an admission (Brygga's own request: to confirm); idempotent on its
        Anmalningsnummer. Raises Refused with the Hinder."""
        r = self._request("POST", "/studiedeltagande/tillfallesantagning", "studiedeltagande",
                          data=self.placements.write(placement), ok=(200, 201), traceparent=placement.traceparent)
        return self._read("place", self.placements.read, r.content)

    def _structure(self, student_uid: str) -> bytes:
        return self._request("GET", f"/studiedeltagande/studiestruktur/student/{segment(student_uid)}",
                             "studiedeltagande").content

    def study_plan(self, student_uid: str) -> list[PlanNode]:
        """Every admission in the student's study structure (packages and the courses inside them)."""
        return self._read("study_plan", self.plans.read, self._structure(student_uid))

    def study_plan_educations(self, student_uid: str) -> list[dict[str, str | None]]:
        """The educations in a student's study structure (``sd:Utbildningsinformation`` of every
        node): tillfälle uid, utbildningsinstans uid, Utbildningskod and Tillfälleskod."""
        return self._read("study_plan", self.plans.read_educations, self._structure(student_uid))

    def student_merits(self, student_uid: str) -> list[LadokEvent]:
        """Every merit Ladok has for a student, read from its REST resources into the shape of the
        events that announce the same merits (``mappings/ladok/merits.py``): attested results, the
        registrations of the study structure, avbrott and study breaks of its admissions, credit
        transfers and issued certificates. 4 requests, and one per admission with an avbrott or a
        study break."""
        m, uid = self.merit_snapshot, segment(student_uid)
        events: list[LadokEvent] = []
        events += self._get("merit_results", f"/resultat/studieresultat/resultat/student/{uid}", "resultat",
                            lambda data: m.read_results(data, student_uid))
        structure = self._read("merit_structure", lambda data: m.read_structure(data, student_uid),
                               self._structure(student_uid))
        events += structure.registrations
        for antagning, tillfalle in structure.avbrott:
            r = self._request("GET", f"/studiedeltagande/tillfallesantagning/{segment(antagning)}/avbrott",
                              "studiedeltagande", ok=(200, 404))
            if r.status_code == 200:
                events.append(self._read("merit_avbrott", partial(m.read_avbrott, student_uid=student_uid,
                                                                  tillfalle_uid=tillfalle), r.content))
        for antagning, tillfalle in structure.uppehall:
            events += self._get("merit_uppehall", f"/studiedeltagande/tillfallesantagning/{segment(antagning)}/uppehall",
                                "studiedeltagande", partial(m.read_uppehall, student_uid=student_uid,
                                                            tillfalle_uid=tillfalle))
        events += self._get("merit_credit_transfers", f"/resultat/tillgodoraknande/student/{uid}", "resultat",
                            lambda data: m.read_credit_transfers(data, student_uid))
        events += self._get("merit_certificates", f"/examen/utfardatbevis/student/{uid}", "examen",
                            lambda data: m.read_certificates(data, student_uid))
        return events

    def villkor(self, antagning_uid: str) -> list[str]:
        """The behörighetsvillkor on a tillfällesantagning (``sd:BehorighetsvillkorLista``)."""
        return self._get("villkor", f"/studiedeltagande/behorighetsvillkor/tillfallesantagning/{segment(antagning_uid)}",
                         "studiedeltagande", self.conditions.read)

    def add_villkor(self, antagning_uid: str, code: str) -> list[str]:
        """Put a villkor on the tillfällesantagning (``sd:SkapaBehorighetsvillkor``; the path is
        Brygga's own: to confirm); the villkor now there."""
        r = self._request("POST", f"/studiedeltagande/behorighetsvillkor/tillfallesantagning/{segment(antagning_uid)}",
                          "studiedeltagande", data=self.conditions.write_one(code), ok=(200, 201))
        return self._read("add_villkor", self.conditions.read, r.content)

    def lift_villkor(self, antagning_uid: str, code: str) -> bool:
        """Remove one villkor (the path is Brygga's own: to confirm); False when it is not there
        (e.g. already removed by hand in Ladok)."""
        try:
            self._request("DELETE", f"/studiedeltagande/behorighetsvillkor/tillfallesantagning/"
                                    f"{segment(antagning_uid)}/{segment(code)}", "studiedeltagande")
        except PeerError as e:
            if e.status == 404:
                return False
            raise
        return True

    # ------------------------------------------------------------------ återbud and avbrott
    # The återbud reconciliation (brygga/flows/aterbud/) and its operator actions; the bodies come
    # from the ``ladok.aterbud`` mapping (mappings/ladok/aterbud.py). The paths are Brygga's own:
    # to confirm against Ladok.
    def aterbud(self, antagning_uid: str, date: dt.date | str, *, cause: str = "meddelat_av_studenten",
                externt_system: str | None = None) -> dict[str, str | None]:
        """Record återbud on a tillfällesantagning (a programme's covers its package's courses).
        Raises Refused with ``hinder.key`` aterbud.finns / registrerad / avbrott.finns."""
        r = self._request("POST", f"/studiedeltagande/tillfallesantagning/{segment(antagning_uid)}/aterbud", "studiedeltagande",
                          data=self.aterbud_mapping.write_aterbud(date, cause=cause, externt_system=externt_system),
                          ok=(200, 201))
        return self._read("aterbud", self.aterbud_mapping.read_aterbud, r.content)

    def existing_aterbud(self, antagning_uid: str) -> dict[str, str | None] | None:
        """The återbud recorded on the admission (``externt_system`` = where it came from), or None."""
        try:
            r = self._request("GET", f"/studiedeltagande/tillfallesantagning/{segment(antagning_uid)}/aterbud",
                              "studiedeltagande")
        except PeerError as e:
            if e.status == 404:
                return None
            raise
        return self._read("existing_aterbud", self.aterbud_mapping.read_aterbud, r.content)

    def avbrott(self, antagning_uid: str, date: dt.date | str, *, externreferens: str | None = None) -> dict[str, Any]:
        """Record avbrott; Ladok makes it an early avbrott (registrations withdrawn) before study
        start + 21 days. Raises Refused with ``hinder.key`` avbrott.finns / ej.registrerad."""
        r = self._request("POST", f"/studiedeltagande/tillfallesantagning/{segment(antagning_uid)}/avbrott", "studiedeltagande",
                          data=self.aterbud_mapping.write_avbrott(date, externreferens=externreferens), ok=(200, 201))
        return self._read("avbrott", self.aterbud_mapping.read_avbrott, r.content)

    # ------------------------------------------------------------------ archive (Ladok's own documents)
    def document(self, path: str, service: str, *, max_bytes: int = 64 * 1024 * 1024,
                 params: list[tuple[str, Any]] | None = None) -> bytes | None:
        """One Ladok reply as Ladok wrote it (the archive keeps Ladok's representation); None on
        404. A reply larger than ``max_bytes`` is refused: no archive document is that large."""
        r = self._request("GET", path, service, ok=(200, 404), stream=True, params=params)
        try:
            if r.status_code == 404:
                _ = r.content
                return None
            data = r.raw.read(max_bytes + 1)
        except TransportError as e:
            raise transport_error("ladok", e) from None
        finally:
            r.close()
        if len(data) > max_bytes:
            raise PeerError("ladok", f"GET {path}: reply larger than {max_bytes} bytes")
        return data

    def tillfalle_document(self, uid: str) -> bytes | None:
        return self.document(f"/utbildningsinformation/utbildningstillfalle/{segment(uid)}", "utbildningsinformation")

    def deltagare_documents(self, uid: str, *, limit: int = 2000) -> Iterator[tuple[bytes, list[Participant | RecordError]]]:
        """A course instance's participant pages as Ladok wrote them, each with what it lists
        (``Participant`` or ``RecordError``), every state."""
        page, seen = 1, 0
        while True:
            data = self.document("/studiedeltagande/deltagare/kurstillfalle", "studiedeltagande", params=[
                ("kurstillfalleUID", uid), *(("deltagaretillstand", s) for s in DELTAGARETILLSTAND),
                ("orderBy", ORDER_BY), ("limit", limit), ("page", page)])
            if data is None:
                return
            total, hits = self._read("deltagare_documents", self.deltagare.read_search, data)
            yield data, hits
            seen += len(hits)
            if not hits or seen >= total:
                return
            page += 1

    def resultat_document(self, student_uid: str) -> bytes | None:
        """The student's results (rr:ResultatLista), every course."""
        return self.document(f"/resultat/studieresultat/resultat/student/{segment(student_uid)}", "resultat")

    def is_protected(self, student_uid: str) -> bool:
        """Whether the student has skyddade personuppgifter (si:SkyddadePersonuppgifter; 404: none)."""
        data = self.document(f"/studentinformation/student/{segment(student_uid)}/skyddadepersonuppgifter",
                             "studentinformation", max_bytes=1024 * 1024)
        return data is not None and self._read("is_protected", self.students.read_protection, data)

    def bevis_document(self, uid: str) -> bytes | None:
        """One issued degree certificate (ex:UtfardatBevisLista with it)."""
        return self.document(f"/examen/utfardatbevis/{segment(uid)}", "examen")

    def bevis_search_documents(self, fran: dt.date, till: dt.date, *, limit: int = 400) -> Iterator[bytes]:
        """The pages of certificates issued from ``fran`` to ``till`` (ex:UtfardatBevisLista), as
        Ladok wrote them (the search is Brygga's own: to confirm); an empty page ends it."""
        page = 1
        while True:
            data = self.document("/examen/utfardatbevis/filtrera", "examen", params=[
                ("utfardandedatumFran", fran.isoformat()), ("utfardandedatumTill", till.isoformat()),
                ("limit", limit), ("page", page)])
            if data is None:
                return
            yield data
            page += 1
