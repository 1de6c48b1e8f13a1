"""Ladok: REST resources (``application/vnd.ladok-<service>+xml``) and the Atom event feed."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from adapters.http import (
    PeerError,
    Response,
    TransportError,
    UnreadableReply,
    reading,
    segment,
    session,
    status_error,
    transport_error,
)
from brygga import personnummer as pnr_mod
from brygga import xmlsafe
from brygga.config import LadokSettings, PeerConfig, settings_as
from brygga.logmask import get_logger
from brygga.records import FeedPage, Hinder, Placement, PlanNode, Student, Utbildningstillfalle
from mappings import registry
from mappings.base import RecordError
from mappings.ladok.events import MAX_PAGE_BYTES

log = get_logger("adapters.ladok")
T = TypeVar("T")

ACCEPT = {s: f"application/vnd.ladok-{s}+xml" for s in
          ("studentinformation", "studiedeltagande", "utbildningsinformation", "resultat", "examen")}


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
    import re

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
    """Ladok answered with a Hinder (4xx): the request cannot succeed as it is."""

    def __init__(self, hinder: Hinder, status: int):
        super().__init__("ladok", f"{status} {hinder.key}: {hinder.text}", status=status)
        self.hinder = hinder


class LadokAdapter:
    def __init__(self, peer: PeerConfig, *, mappings: dict[str, int] | None = None):
        self.peer = peer
        self.base = peer.base_url.rstrip("/")
        self.http = session(peer)
        m = mappings if mappings is not None else peer.mappings
        self.events = registry.select("ladok", "events", m)
        self.students = registry.select("ladok", "student", m)
        self.tillfallen = registry.select("ladok", "utbildningstillfalle", m)
        self.placements = registry.select("ladok", "placement", m)
        self.plans = registry.select("ladok", "studieplan", m)
        self.conditions = registry.select("ladok", "villkor", m)
        self.aterbud_mapping = registry.select("ladok", "aterbud", m)
        self.deltagare = registry.select("ladok", "deltagare", m)
        self._no_student_search = False  # set when Ladok answers the student search with 404/405
        self.settings = settings_as(peer, LadokSettings)

    @property
    def concurrency(self) -> int:
        """Concurrent GETs a bulk read may make (the Connection's ``concurrency``)."""
        return self.settings.concurrency

    # ------------------------------------------------------------------ plumbing
    def _request(self, method: str, path: str, service: str, *, ok: tuple[int, ...] = (200,), **kw: Any) -> Response:
        headers = {"Accept": ACCEPT.get(service, "application/xml")}
        if "data" in kw:
            headers["Content-Type"] = ACCEPT.get(service, "application/xml") + ";charset=UTF-8"
        try:
            r = self.http.request(method, self.base + path, headers=headers, timeout=self.peer.timeout, **kw)
        except TransportError as e:
            raise transport_error("ladok", e) from None
        if r.status_code in ok:
            return r
        _ = r.content  # read the (small) error body; a streamed reply is released to the pool
        if 400 <= r.status_code < 500 and r.content:
            try:
                hinder = self.placements.read_hinder(r.content)
            except ValueError:
                hinder = None
            if hinder is not None and hinder.key:
                raise Refused(hinder, r.status_code)
        raise status_error("ladok", f"{method} {path}", r.status_code, r.headers)

    def _read(self, operation: str, read: Callable[[bytes], T], data: bytes) -> T:
        """A reply read by its mapping; one that cannot be read is an ``UnreadableReply``."""
        with reading("ladok", operation, len(data)):
            return read(data)

    # ------------------------------------------------------------------ feed
    def feed_page(self, number: int | None = None, *, url: str | None = None) -> FeedPage:
        """``recent`` when no number/url is given. A pruned archive page raises FeedGone."""
        path = url.split("/handelser/", 1)[-1] if url else (f"feed/{number}" if number is not None else "feed/recent")
        try:
            r = self._request("GET", "/handelser/" + path, "events", stream=True)
        except Refused as e:
            raise FeedGone("ladok", f"feed page {path} is gone", status=e.status) from None
        except PeerError as e:
            if e.status in (404, 410):
                raise FeedGone("ladok", f"feed page {path} is gone", status=e.status) from None
            raise
        number = int(path.rsplit("/", 1)[-1]) if path.rsplit("/", 1)[-1].isdigit() else None
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
            raise UnreadablePage(number, e, len(data), _excerpt(data, e)) from e

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
                          limit: int = 400) -> Iterator[str]:
        """Uids of matching instances, all pages (``startperiod``: the term they start in, HT2027)."""
        params = {k: v for k, v in (("antagningsomgang", round_code), ("tillfalleskod", tillfalleskod),
                                    ("utbildningskod", utbildningskod), ("startperiod", startperiod)) if v}
        page, seen = 1, 0
        while True:
            r = self._request("GET", "/utbildningsinformation/utbildningstillfalle/filtrera", "utbildningsinformation",
                              params={**params, "page": page, "limit": limit})
            total, uids = self._read("search_tillfallen", self.tillfallen.read_search, r.content)
            yield from uids
            seen += len(uids)
            if not uids or seen >= total:
                return
            page += 1

    def participants(self, instance_uids: list[str], *, limit: int = 2000) -> Iterator[Any]:
        """Participants (``Participant``, or ``RecordError`` for one Ladok sent that breaks the
        rules) of the instances, every state, all pages of one ``deltagare/kurstillfalle`` search."""
        if not instance_uids:
            return
        page, seen = 1, 0
        while True:
            r = self._request("GET", "/studiedeltagande/deltagare/kurstillfalle", "studiedeltagande",
                              params=[("utbildningstillfalleUID", u) for u in instance_uids]
                              + [("limit", limit), ("page", page)])
            total, hits = self._read("participants", self.deltagare.read_search, r.content)
            yield from hits
            seen += len(hits)
            if not hits or seen >= total:
                return
            page += 1

    def email(self, student_uid: str) -> str | None:
        """The student's e-mail address from si:Kontaktuppgifter (None: Ladok has none)."""
        r = self._request("GET", f"/studentinformation/student/{segment(student_uid)}/kontaktuppgifter",
                          "studentinformation")
        try:
            return self.deltagare.read_email(r.content)
        except xmlsafe.UnreadableXML as e:
            raise UnreadableReply("ladok", "kontaktuppgifter", e, transient=False, read_bytes=len(r.content)) from None

    # ------------------------------------------------------------------ students
    def student_by_personnummer(self, personnummer: str) -> Student | None:
        # 404 = not a student (yet): the common answer when admitting new students, so it is taken
        # as an answer, not parsed into a Hinder and raised.
        r = self._request("GET", f"/studentinformation/student/personnummer/{segment(personnummer)}", "studentinformation",
                          ok=(200, 404))
        if r.status_code == 404:
            _ = r.content  # release the connection
            return None
        return self._read("student_by_personnummer", self.students.read, r.content)

    def students_by_personnummer(self, pnrs: list[str], *, batch: int = 200) -> dict[str, Student]:
        """The students among ``pnrs``, keyed by canonical personnummer; absent = not a student (yet).

        One ``filtrera`` request per ``batch`` numbers instead of one lookup each. Hits are matched
        by number, never by position, and only numbers asked for count; an invalid number cannot
        be a student and is not sent. A reply that claims more hits than numbers asked did not
        filter by them (e.g. a Ladok that ignores the parameter): its further pages, which would
        walk every student, are not fetched; the establishment's ``personnummer.finns`` path then
        finds those students one by one."""
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
        r = self._request("GET", f"/studentinformation/student/{segment(uid)}", "studentinformation")
        return self._read("student", self.students.read, r.content)

    def establish(self, student: Student) -> Student:
        r = self._request("POST", "/studentinformation/student", "studentinformation",
                          data=self.students.write(student), ok=(200, 201))
        return self._read("establish", self.students.read, r.content)

    # ------------------------------------------------------------------ study plan
    def place(self, placement: Placement) -> dict[str, str | None]:
        """Place an admission; idempotent on its Anmalningsnummer. Raises Refused with the Hinder."""
        r = self._request("POST", "/studiedeltagande/tillfallesantagning", "studiedeltagande",
                          data=self.placements.write(placement), ok=(200, 201))
        return self._read("place", self.placements.read, r.content)

    def study_plan(self, student_uid: str) -> list[PlanNode]:
        """Every admission in the student's study plan (packages and the courses inside them)."""
        r = self._request("GET", f"/studiedeltagande/tillfallesdeltagande/student/{segment(student_uid)}", "studiedeltagande")
        return self._read("study_plan", self.plans.read, r.content)

    def villkor(self, antagning_uid: str) -> list[str]:
        r = self._request("GET", f"/studiedeltagande/tillfallesantagning/{segment(antagning_uid)}/behorighetsvillkor",
                          "studiedeltagande")
        return self._read("villkor", self.conditions.read, r.content)

    def set_villkor(self, antagning_uid: str, codes: list[str]) -> list[str]:
        r = self._request("PUT", f"/studiedeltagande/tillfallesantagning/{segment(antagning_uid)}/behorighetsvillkor",
                          "studiedeltagande", data=self.conditions.write(codes))
        return self._read("set_villkor", self.conditions.read, r.content)

    def lift_villkor(self, antagning_uid: str, code: str) -> bool:
        """Remove one villkor; False when it is not there (e.g. already removed by hand in Ladok)."""
        try:
            self._request("DELETE", f"/studiedeltagande/tillfallesantagning/{segment(antagning_uid)}/behorighetsvillkor/{segment(code)}",
                          "studiedeltagande")
        except PeerError as e:
            if e.status == 404:
                return False
            raise
        return True

    def study_plan_educations(self, student_uid: str) -> list[dict[str, str | None]]:
        """The educations in a student's study plan (``sd:Utbildningsinformation`` of every node of
        ``/studiedeltagande/tillfallesdeltagande/student/{uid}``): tillfälle uid, utbildningsinstans
        uid, Utbildningskod and Tillfälleskod. A few scalar fields, read here with the safe streaming
        reader (no Brygga record type for a study plan yet)."""
        from mappings.base import stream_elements

        sd = "{http://schemas.ladok.se/studiedeltagande}"
        r = self._request("GET", f"/studiedeltagande/tillfallesdeltagande/student/{segment(student_uid)}", "studiedeltagande")
        out = []
        for el in stream_elements(r.content, sd + "Utbildningsinformation"):
            out.append({k: (el.findtext(sd + tag) or "").strip() or None for k, tag in (
                ("tillfalle_uid", "UtbildningstillfalleUID"), ("instans_uid", "UtbildningsinstansUID"),
                ("utbildningskod", "Utbildningskod"), ("tillfalleskod", "Utbildningstillfalleskod"))})
        return out

    # ------------------------------------------------------------------ återbud and avbrott
    # The återbud reconciliation (brygga/flows/aterbud/) and its operator actions; the bodies come
    # from the ``ladok.aterbud`` mapping (mappings/ladok/aterbud.py).
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
        except Refused as e:
            if e.status == 404:
                return None
            raise
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
    def document(self, path: str, service: str, *, max_bytes: int = 64 * 1024 * 1024) -> bytes | None:
        """One Ladok reply as Ladok wrote it (the archive keeps Ladok's representation); None on
        404. A reply larger than ``max_bytes`` is refused: no archive document is that large."""
        r = self._request("GET", path, service, ok=(200, 404), stream=True)
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

    def deltagare_documents(self, uid: str, *, limit: int = 2000) -> Iterator[tuple[bytes, list[Any]]]:
        """The instance's participant pages as Ladok wrote them, each with what it lists
        (``Participant`` or ``RecordError``), every state."""
        page, seen = 1, 0
        while True:
            data = self.document(f"/studiedeltagande/deltagare/kurstillfalle?utbildningstillfalleUID={segment(uid)}"
                                 f"&limit={limit}&page={page}", "studiedeltagande")
            if data is None:
                return
            total, hits = self._read("deltagare_documents", self.deltagare.read_search, data)
            yield data, hits
            seen += len(hits)
            if not hits or seen >= total:
                return
            page += 1

    def resultat_document(self, student_uid: str) -> bytes | None:
        """The student's attested results (rr:ResultatLista), every course."""
        return self.document(f"/resultat/studieresultat/student/{segment(student_uid)}", "resultat")

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
        Ladok wrote them; the caller reads them (an empty page ends the search)."""
        page = 1
        while True:
            data = self.document(f"/examen/utfardatbevis/filtrera?utfardandedatumFran={fran.isoformat()}"
                                 f"&utfardandedatumTill={till.isoformat()}&limit={limit}&page={page}", "examen")
            if data is None:
                return
            yield data
            page += 1
