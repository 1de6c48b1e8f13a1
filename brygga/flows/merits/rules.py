"""The merit rules (meriter): which Ladok events become which NyA merits, and how. Pure: the
lookups a merit needs (its utbildningstillfälle, the student's study plan, Ladok's grade scales)
come from the caller."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

from brygga.flows.kit.flow import Flow
from brygga.records import LadokEvent, Merit, Utbildningstillfalle

FLOW = Flow("merit-sync", "brygga_merit_sync", checkpoints=("ladok-merits",), destination="nya", kinds=("merit",),
            sources=("ladok",))
CHECKPOINT = FLOW.checkpoint()  # feed_checkpoint.name
SOURCE = FLOW.sources[0]  # inbox_message.source (HandelseUID)
DESTINATION = FLOW.destination
KIND = FLOW.kinds[0]
ACTOR = FLOW.actor

#: Ladok event type -> NyA merit Type.
MERIT_TYPES: dict[str, str] = {
    "RegistreringEvent": "registrering",
    "ResultatPaModulAttesteratEvent": "resultat",
    "TillgodoraknandeAttesteratEvent": "tillgodoraknande",
    "AvbrottEvent": "avbrott",
    "UppehallEvent": "studieuppehall",
    "UtfardatBevisEvent": "examen",
}

#: Where each event names the utbildningstillfälle its merit belongs to (first present wins).
TILLFALLE_FIELDS: dict[str, tuple[str, ...]] = {
    "RegistreringEvent": ("KurstillfalleUID",),
    "ResultatPaModulAttesteratEvent": ("KurstillfalleUID",),
    "TillgodoraknandeAttesteratEvent": ("KopplatKurspaketeringstillfalleUID",),
    "AvbrottEvent": ("UtbildningstillfalleUID",),
    "UppehallEvent": ("KurspaketeringstillfalleUID",),
    "UtfardatBevisEvent": (),  # names only the programme's utbildningsinstans: see Enricher.instans
}

#: The Ladok id a merit refers to, for SourceReference.
REFERENCE_FIELDS: dict[str, tuple[str, str]] = {
    "RegistreringEvent": ("registrering", "RegistreringUID"),
    "ResultatPaModulAttesteratEvent": ("resultat", "Resultat/ResultatUID"),
    "TillgodoraknandeAttesteratEvent": ("tillgodoraknande", "TillgodoraknandeUID"),
    "AvbrottEvent": ("avbrott", "UtbildningstillfalleUID"),
    "UppehallEvent": ("uppehall", "UppehallUID"),
    "UtfardatBevisEvent": ("bevis", "UtfardatBevisUID"),
}


class Lookups(Protocol):
    """What ``to_merit`` needs from Ladok (``merits.lookups.Enricher``, or a fake in tests)."""

    def tillfalle(self, uid: str) -> Utbildningstillfalle | None: ...

    def instans(self, student_uid: str, instans_uid: str) -> dict[str, str | None] | None: ...

    def grade(self, scale_id: str | None, grade_id: str) -> str | None:
        """The code of a Ladok grade (A, FX, VG …) as Ladok's grade scales list it, or None."""
        ...

    def grade_unknown(self, scale_id: str | None, grade_id: str | None) -> str:
        """Why ``grade`` found none: the quarantine reason."""
        ...


def _get(fields: dict[str, Any], path: str) -> str | None:
    if "/" in path:
        value: Any = fields
        for part in path.split("/"):
            if not isinstance(value, dict):
                return None
            value = value.get(part)
    else:
        value = fields.get(path)
    if isinstance(value, list):
        value = value[0] if value else None
    return value if isinstance(value, str) and value else None


def _credits(value: str | None) -> str | None:
    if not value:
        return None
    try:
        return str(Decimal(value).quantize(Decimal("0.1")))
    except InvalidOperation:
        return None


#: Where each merit event carries its date (first present wins; else the entry's ``updated``).
DATE_FIELDS: dict[str, tuple[str, ...]] = {
    "RegistreringEvent": ("StudieperiodStart",),
    "ResultatPaModulAttesteratEvent": ("Resultat/Examinationsdatum", "Beslut/Beslutsdatum"),
    "TillgodoraknandeAttesteratEvent": ("Beslut/Beslutsdatum",),
    "AvbrottEvent": ("Avbrottsdatum",),
    "UppehallEvent": ("Startdatum",),
    "UtfardatBevisEvent": ("DatumForUtfardatBevis",),
}


def _date(e: LadokEvent) -> str | None:
    f = e.fields
    for path in DATE_FIELDS[e.event_type]:
        v = _get(f, path)
        if v:
            return v[:10]
    return e.updated[:10] or None


def _education(e: LadokEvent, lookups: Lookups) -> tuple[str, str | None, Utbildningstillfalle | None] | str:
    """(Utbildningskod, Tillfälleskod, the instance when one was looked up) of the merit's
    education, or the reason there is none."""
    f = e.fields
    if e.event_type == "UtfardatBevisEvent":
        instans_uid = _get(f, "HuvudsakligKurspaketeringsinstansUID")
        if instans_uid is None:
            return "UtfardatBevisEvent names no HuvudsakligKurspaketeringsinstansUID: no Utbildningskod for the examen"
        edu = lookups.instans(e.student_uid or "", instans_uid)
        if edu is None or not edu["utbildningskod"]:
            return f"utbildningsinstans {instans_uid} of the examen is not in the student's study plan"
        return edu["utbildningskod"], edu["tillfalleskod"], None
    tillfalle_uid = next((v for v in (_get(f, p) for p in TILLFALLE_FIELDS[e.event_type]) if v), None)
    if tillfalle_uid is None:
        return (f"{e.event_type} names no utbildningstillfälle ({'/'.join(TILLFALLE_FIELDS[e.event_type])} "
                "missing): no Utbildningskod for the NyA merit")
    t = lookups.tillfalle(tillfalle_uid)
    if t is None:
        return f"utbildningstillfälle {tillfalle_uid} not found in Ladok (404)"
    if not t.utbildningskod:
        return f"utbildningstillfälle {tillfalle_uid} has no utbildningskod attribute in Ladok"
    return t.utbildningskod, t.tillfalleskod, t


def to_merit(e: LadokEvent, personnummer: str, lookups: Lookups) -> Merit | str:
    """The NyA merit for a merit event of an applicant, or the reason it cannot be one."""
    mtype = MERIT_TYPES[e.event_type]
    f = e.fields
    education = _education(e, lookups)
    if isinstance(education, str):
        return education
    code, tkod, t = education
    date = _date(e)
    if not date:
        return f"{e.event_type} has no date"
    grade = credits = None
    if mtype == "resultat":
        grade_id, scale_id = _get(f, "Resultat/BetygsgradID"), _get(f, "Resultat/BetygsskalaID")
        grade = lookups.grade(scale_id, grade_id) if grade_id else None
        if grade is None:
            return lookups.grade_unknown(scale_id, grade_id)
        credits = _credits(_get(f, "Resultat/OmfattningsPoang"))
    elif mtype == "registrering":
        credits = _credits(_get(f, "Omfattningsvarde")) or (_credits(t.credits) if t else None)
    label, ref_path = REFERENCE_FIELDS[e.event_type]
    ref = _get(f, ref_path)
    return Merit(
        merit_id=e.handelse_uid, personnummer=personnummer, type=mtype, utbildningskod=code,
        date=date, tillfalleskod=tkod, modul=None, credits=credits, grade=grade,
        source_reference=f"ladok:{label}:{ref}" if ref else f"ladok:handelse:{e.handelse_uid}",
    )


def idempotency_key(merit_id: str) -> str:
    """One outbox row per Ladok event: the same merit is never sent twice."""
    return f"nya:merit:{merit_id}"
