"""A student's merits as Ladok's REST resources show them, read into the shape of the events that
announce the same merits (``LadokEvent`` with the event's type and fields), so the merit rules make
the same merit, with the same id and content, whether the feed or the snapshot found it.

* results (``rr:ResultatLista``): each result not cancelled — a module's as
  ``ResultatPaModulAttesteratEvent``, the course's own (``UtbildningsinstansUID`` = the course's
  instance) as ``ResultatPaHelKursAttesteratEvent``; only attested ones (``ProcessStatus`` 3, as
  mappings/arkiv reads them);
* the study structure (``sd:IngaendeKurspaketeringstillfalleLista``): each registration period not
  withdrawn as a ``RegistreringEvent`` (its ``PerioddeltagandeUID`` as the ``RegistreringUID``: to
  confirm against Ladok), and which admissions have an avbrott (their state) or may have a study
  break (every programme admission) to read;
* an avbrott (``sd:Avbrott``) as an ``AvbrottEvent``, study breaks (``sd:Uppehallslista``) as
  ``UppehallEvent``s, credit transfers (``rr:Tillgodoraknanden``) as
  ``TillgodoraknandeAttesteratEvent``s, issued certificates (``ex:UtfardatBevisLista``, removed ones
  left out) as ``UtfardatBevisEvent``s.

Public sources and what is Brygga's own: docs/contracts/ladok.md."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from lxml import etree

from brygga import xmlsafe
from brygga.records import LadokEvent
from mappings.base import Mapping, MappingKey
from mappings.registry import mapping

BASE = "{http://schemas.ladok.se}"
RR = "{http://schemas.ladok.se/resultat}"
SD = "{http://schemas.ladok.se/studiedeltagande}"
EX = "{http://schemas.ladok.se/examen}"
ATTESTED = "3"  # rr:ProcessStatus of an attested result


def _t(el: etree._Element, tag: str) -> str | None:
    v = el.findtext(tag)
    return v.strip() if v and v.strip() else None


def _event(etype: str, service: str, student_uid: str, fields: dict[str, Any]) -> LadokEvent:
    return LadokEvent(entry_id="", handelse_uid="", event_type=etype, service=service, updated="",
                      student_uid=student_uid, fields={k: v for k, v in fields.items() if v is not None})


@dataclass
class StudyStructure:
    """What the snapshot reads from a student's study structure: the registrations (as events),
    the admissions with an avbrott (antagning uid, instance uid) and those with a study break."""

    registrations: list[LadokEvent] = field(default_factory=list)
    avbrott: list[tuple[str, str]] = field(default_factory=list)
    uppehall: list[tuple[str, str]] = field(default_factory=list)


@mapping
class MeritSnapshotV1(Mapping):
    key = MappingKey("ladok", "merit-snapshot", 1)
    description = ("A student's results, registrations, avbrott, study breaks, credit transfers and certificates "
                   "(REST) as the events of the same merits")

    def read_results(self, data: bytes, student_uid: str) -> list[LadokEvent]:
        root = xmlsafe.root(data, RR + "ResultatLista")
        out = []
        for r in root.iter(RR + "Resultat"):
            if _t(r, RR + "ProcessStatus") not in (None, ATTESTED):
                continue
            course = _t(r, RR + "UtbildningsinstansUID") == _t(r, RR + "KursinstansUID")
            out.append(_event(
                "ResultatPaHelKursAttesteratEvent" if course else "ResultatPaModulAttesteratEvent", "resultat",
                student_uid, {
                    "KurstillfalleUID": _t(r, RR + "KurstillfalleUID"), "StudentUID": student_uid,
                    "Resultat": {k: v for k, v in {
                        "ResultatUID": _t(r, RR + "ResultatUID") or _t(r, BASE + "Uid"),
                        "BetygsgradID": _t(r, RR + "Betygsgrad"), "BetygsskalaID": _t(r, RR + "BetygsskalaID"),
                        "Examinationsdatum": _t(r, RR + "Examinationsdatum"),
                        "OmfattningsPoang": _t(r, RR + "ExamineradOmfattning")}.items() if v is not None},
                }))
        return out

    def read_structure(self, data: bytes, student_uid: str) -> StudyStructure:
        root = xmlsafe.root(data, SD + "IngaendeKurspaketeringstillfalleLista")
        out = StudyStructure()
        for node in self._nodes(root):
            antagning = _t(node, SD + "Referens") or _t(node, BASE + "Uid")
            td = node.find(SD + "Tillfallesdeltagande")
            info = node.find(SD + "Utbildningsinformation")
            tillfalle = _t(info, SD + "UtbildningstillfalleUID") if info is not None else None
            if td is None or not antagning or not tillfalle:
                continue
            for p in td.iter(SD + "Perioddeltagande"):
                if _t(p, SD + "Tillstand") == "ATERKALLAD" or _t(p, SD + "AterkalladDatum"):
                    continue
                out.registrations.append(_event("RegistreringEvent", "studiedeltagande", student_uid, {
                    "KurstillfalleUID": tillfalle, "RegistreringUID": _t(p, SD + "PerioddeltagandeUID"),
                    "StudieperiodStart": _t(p, SD + "UtbildningsPeriodFran"),
                    "Omfattningsvarde": _t(p, SD + "Omfattningsvarde"), "StudentUID": student_uid}))
            state = (td.findtext(f"{SD}TillstandKurs/{SD}Sammanfattattillstand") or "").strip()
            if state.endswith(".avbrott"):  # (an early avbrott is tidigtavbrott: no avbrott in Ladok)
                out.avbrott.append((antagning, tillfalle))
            # a study break is on a programme admission; HarPagandeUppehall says only whether one is
            # ongoing (a planned or past one is a merit too): every programme admission is asked
            if td.find(SD + "TillstandKurspaketering") is not None or (
                    _t(td, SD + "HarPagandeUppehall") or "false") == "true":
                out.uppehall.append((antagning, tillfalle))
        return out

    @staticmethod
    def _nodes(root: etree._Element) -> Iterator[etree._Element]:
        for tag in (SD + "Studiestruktur", SD + "Barn"):
            yield from root.iter(tag)

    def read_avbrott(self, data: bytes, student_uid: str, tillfalle_uid: str) -> LadokEvent:
        a = xmlsafe.root(data, SD + "Avbrott")
        return _event("AvbrottEvent", "studiedeltagande", student_uid, {
            "UtbildningstillfalleUID": tillfalle_uid, "Avbrottsdatum": _t(a, SD + "Avbrottsdatum"),
            "StudentUID": student_uid})

    def read_uppehall(self, data: bytes, student_uid: str, tillfalle_uid: str) -> list[LadokEvent]:
        root = xmlsafe.root(data, SD + "Uppehallslista")
        return [_event("UppehallEvent", "studiedeltagande", student_uid, {
            "KurspaketeringstillfalleUID": tillfalle_uid, "UppehallUID": _t(u, BASE + "Uid"),
            "Startdatum": _t(u, SD + "FranOchMed"), "StudentUID": student_uid})
            for u in root.iter(SD + "Uppehall")]

    def read_credit_transfers(self, data: bytes, student_uid: str) -> list[LadokEvent]:
        root = xmlsafe.root(data, RR + "Tillgodoraknanden")
        return [_event("TillgodoraknandeAttesteratEvent", "resultat", student_uid, {
            "TillgodoraknandeUID": _t(tg, BASE + "Uid"), "Beslut": {"Beslutsdatum": _t(tg, RR + "Beslutsdatum")},
            "KopplatKurspaketeringstillfalleUID": _t(tg, RR + "KopplatKurspaketeringstillfalleUID"),
            "StudentUID": student_uid}) for tg in root.iter(RR + "Tillgodoraknande")]

    def read_certificates(self, data: bytes, student_uid: str) -> list[LadokEvent]:
        root = xmlsafe.root(data, EX + "UtfardatBevisLista")
        return [_event("UtfardatBevisEvent", "examen", student_uid, {
            "UtfardatBevisUID": _t(b, BASE + "Uid"), "DatumForUtfardatBevis": _t(b, EX + "Utfardandedatum"),
            "HuvudsakligKurspaketeringsinstansUID": _t(b, EX + "HuvudsakligKurspaketeringsinstansUID"),
            "StudentUID": student_uid})
            for b in root.iter(EX + "UtfardatBevis") if (_t(b, EX + "Borttaget") or "false") != "true"]
