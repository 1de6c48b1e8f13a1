"""The merit rules (meriter): which Ladok events become which NyA merits, and how. Pure: the
lookups a merit needs (its utbildningstillfälle, the student's study plan, Ladok's grade scales)
come from the caller."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

from brygga.flows.kit.flow import Flow
from brygga.records import MERIT_CONTENT, LadokEvent, Merit, Utbildningstillfalle

FLOW = Flow("merit-sync", "brygga_merit_sync", checkpoints=("ladok-merits", "nya-applicants:{round}"), destination="nya",
            kinds=("merit", "merit-withdraw", "merit-snapshot"), sources=("ladok",))
CHECKPOINT = FLOW.checkpoint()  # feed_checkpoint.name
SOURCE = FLOW.sources[0]  # inbox_message.source (HandelseUID)
DESTINATION = FLOW.destination
KIND = FLOW.kinds[0]  # a merit found on the feed (live)
WITHDRAW_KIND = FLOW.kinds[1]  # a merit Ladok took back
SNAPSHOT_KIND = FLOW.kinds[2]  # a merit found when its student applied (sent after the live ones)
ACTOR = FLOW.actor

#: Ladok event type -> NyA merit Type.
MERIT_TYPES: dict[str, str] = {
    "RegistreringEvent": "registrering",
    "ResultatPaModulAttesteratEvent": "resultat",
    "ResultatPaHelKursAttesteratEvent": "resultat",  # the course grade
    "TillgodoraknandeAttesteratEvent": "tillgodoraknande",
    "AvbrottEvent": "avbrott",
    "UppehallEvent": "studieuppehall",
    "UtfardatBevisEvent": "examen",
}

#: Where each event names the utbildningstillfälle its merit belongs to (first present wins).
TILLFALLE_FIELDS: dict[str, tuple[str, ...]] = {
    "RegistreringEvent": ("KurstillfalleUID",),
    "ResultatPaModulAttesteratEvent": ("KurstillfalleUID",),
    "ResultatPaHelKursAttesteratEvent": ("KurstillfalleUID",),
    "TillgodoraknandeAttesteratEvent": ("KopplatKurspaketeringstillfalleUID",),
    "AvbrottEvent": ("UtbildningstillfalleUID",),
    "UppehallEvent": ("KurspaketeringstillfalleUID",),
    "UtfardatBevisEvent": (),  # names only the programme's utbildningsinstans: see Enricher.instans
}

#: The Ladok object a merit is: its kind and where the event names its UID. A merit's id is
#: ``ladok:<kind>:<uid>`` (``merit_ref``), the same whether the feed or the snapshot found it; an
#: avbrott has no UID of its own: it is the student's on the utbildningstillfälle.
REFERENCE_FIELDS: dict[str, tuple[str, str]] = {
    "RegistreringEvent": ("registrering", "RegistreringUID"),
    "ResultatPaModulAttesteratEvent": ("resultat", "Resultat/ResultatUID"),
    "ResultatPaHelKursAttesteratEvent": ("resultat", "Resultat/ResultatUID"),
    "TillgodoraknandeAttesteratEvent": ("tillgodoraknande", "TillgodoraknandeUID"),
    "AvbrottEvent": ("avbrott", "UtbildningstillfalleUID"),
    "UppehallEvent": ("uppehall", "UppehallUID"),
    "UtfardatBevisEvent": ("bevis", "UtfardatBevisUID"),
}

#: Ladok taking a merit back: the event and the merit it withdraws (as REFERENCE_FIELDS). An early
#: avbrott withdraws the registration (AterkalladregistreringEvent), not an avbrott merit.
RETRACTIONS: dict[str, tuple[str, str]] = {
    "AttesteratResultatMakuleratEvent": ("resultat", "ResultatUID"),
    "TillgodoraknandeBorttagetEvent": ("tillgodoraknande", "TillgodoraknandeUID"),
    "AvbrottBorttagetEvent": ("avbrott", "UtbildningstillfalleUID"),
    "UppehallBorttagetEvent": ("uppehall", "UppehallUID"),
    "UtfardatBevisBorttagetEvent": ("bevis", "UtfardatBevisUID"),
    "AterkalladregistreringEvent": ("registrering", "RegistreringUID"),
}

CONTENT_FIELDS = MERIT_CONTENT  # a merit's content: a change of any of these is sent again


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
    "ResultatPaHelKursAttesteratEvent": ("Resultat/Examinationsdatum", "Beslut/Beslutsdatum"),
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


def _ref(kind: str, path: str, e: LadokEvent) -> str | None:
    uid = _get(e.fields, path)
    if not uid:
        return None
    if kind == "avbrott":  # the student's avbrott on the instance
        return f"ladok:avbrott:{e.student_uid}:{uid}" if e.student_uid else None
    return f"ladok:{kind}:{uid}"


def merit_ref(e: LadokEvent) -> str | None:
    """The Ladok object a merit event is about, as its merit id (``ladok:<kind>:<uid>``)."""
    return _ref(*REFERENCE_FIELDS[e.event_type], e)


def retraction_ref(e: LadokEvent) -> str | None:
    """The merit a retraction event takes back (None: it names none)."""
    return _ref(*RETRACTIONS[e.event_type], e)


def to_merit(e: LadokEvent, personnummer: str, lookups: Lookups) -> Merit | str:
    """The NyA merit for a merit event of an applicant (or a snapshot record read as one), or the
    reason it cannot be one."""
    mtype = MERIT_TYPES[e.event_type]
    f = e.fields
    ref = merit_ref(e)
    if ref is None:
        return (f"{e.event_type} names no {REFERENCE_FIELDS[e.event_type][1]}: the merit cannot be identified "
                "in Ladok")
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
    return Merit(
        merit_id=ref, personnummer=personnummer, type=mtype, utbildningskod=code,
        date=date, tillfalleskod=tkod, modul=None, credits=credits, grade=grade, source_reference=ref,
    )


def content_hash(m: Merit) -> str:
    """What NyA holds of a merit, hashed: the same content is never sent twice (``Merit.content_hash``)."""
    return m.content_hash()


def idempotency_key(ref: str, version: int) -> str:
    """One outbox row per version of a merit: the same version is never queued twice."""
    return f"nya:merit:{ref}:{version}"


def withdraw_key(ref: str, version: int) -> str:
    """One withdrawal per version of a merit taken back."""
    return f"nya:merit-withdraw:{ref}:{version}"
