"""The schedule export's one internal model, and its rules: what a scheduling system gets from
Ladok. Pure: no I/O, no store, tested in tests/unit.

Objects, each keyed by (kind, ext_id) with the Ladok UID as the stable id:
- ``instance``: a course or programme instance (utbildningstillfälle) of the term with its facts
  and counts (antagna, förväntat deltagande, registrerade, återbud, avbrott); a programme
  instance lists the course instances of its package (kurspaketering). Inställt → inactive.
- ``group``: the instance's student group (``<instance uid>:grupp``), inactive with its instance.
- ``student``: a member of a group. A student with skyddade personuppgifter is the UID only:
  no name, no e-mail, no address, ever (``protected``).
- ``membership``: a student in a group (``<instance uid>:<student uid>``), role antagen or
  registrerad. Återbud and avbrott (early or not) end it: the student leaves the group.

A mapping turns these into its format; the content hash per object is what the delta compares.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from brygga.records import FIELDS, KINDS, ORDER, Participant, ScheduleObject, Utbildningstillfalle, content_hash

__all__ = ["FIELDS", "KINDS", "ORDER", "ScheduleObject", "content_hash"]

MEMBER_STATES = {"ej_paborjad": "antagen", "registrerad": "registrerad"}  # Ladok tillstånd -> role
GONE_STATES = ("aterbud", "avbrott", "tidigtavbrott", "tillfallesbyte")  # the student left the group


def startperiod(start: str | None) -> str | None:
    """The term an instance starts in (``HT2027`` for a start July-December, else ``VT2027``)."""
    if not start:
        return None
    try:
        d = dt.date.fromisoformat(start[:10])
    except ValueError:
        return None
    return f"{'HT' if d.month >= 7 else 'VT'}{d.year}"


def in_scope(t: Utbildningstillfalle, terms: Iterable[str], organisation: str | None = None) -> bool:
    return startperiod(t.start) in set(terms) and (not organisation or t.organisation == organisation)


def counts(participants: Iterable[Participant]) -> Counter[str]:
    """Per instance uid and count name: antagna (every admission), forvantade (admitted, not yet
    registered), registrerade, aterbud, avbrott (early included). A student who switched to another
    instance (tillfällesbyte) counts there, not here."""
    c: Counter[str] = Counter()
    for p in participants:
        if p.state == "tillfallesbyte":
            continue
        i = p.instance_uid
        c[f"{i}|antagna"] += 1
        c[f"{i}|" + {"ej_paborjad": "forvantade", "registrerad": "registrerade", "aterbud": "aterbud"}.get(
            p.state, "avbrott")] += 1
    return c


def _instance(t: Utbildningstillfalle, c: Counter[str]) -> ScheduleObject:
    fields: dict[str, Any] = {
        "typ": "program" if t.is_programme else "kurs",
        "kod": t.utbildningskod, "tillfalleskod": t.tillfalleskod,
        "namn_sv": t.name_sv, "namn_en": t.name_en, "omfattning": t.credits,
        "start": t.start, "slut": t.end, "studietakt": t.studietakt,
        "undervisningstid": t.undervisningstid, "studieort": t.studieort,
        "undervisningssprak": t.undervisningssprak, "organisation": t.organisation,
        "period": startperiod(t.start),
        **{f"antal_{n}": c[f"{t.uid}|{n}"] for n in ("antagna", "forvantade", "registrerade", "aterbud", "avbrott")},
    }
    if t.is_programme:
        fields["kurstillfallen"] = list(t.course_uids)
    return ScheduleObject("instance", t.uid, {k: v for k, v in fields.items() if v is not None},
                          active=not t.installt, instance_uid=t.uid, term=fields["period"],
                          organisation=t.organisation)


def group_id(instance_uid: str) -> str:
    return f"{instance_uid}:grupp"


def build(instances: Iterable[Utbildningstillfalle], participants: list[Participant],
          emails: dict[str, str | None]) -> list[ScheduleObject]:
    """Every object of these instances and their participants, in sending order (students,
    instances, groups, memberships). ``emails``: student uid -> address Ladok has (or None)."""
    c = counts(participants)
    objects: list[ScheduleObject] = []
    students: dict[str, ScheduleObject] = {}
    instances = list(instances)
    known = {t.uid: t for t in instances}
    for t in instances:
        objects.append(_instance(t, c))
        name = " ".join(x for x in (t.utbildningskod, startperiod(t.start), f"({t.tillfalleskod})"
                                    if t.tillfalleskod else None) if x)
        objects.append(ScheduleObject("group", group_id(t.uid), {"namn": f"Studenter {name}"[:255], "tillfalle": t.uid},
                                      active=not t.installt, instance_uid=t.uid, term=startperiod(t.start),
                                      organisation=t.organisation))
    seen: set[str] = set()
    for p in participants:
        role = MEMBER_STATES.get(p.state)
        inst = known.get(p.instance_uid)
        if role is None or inst is None or inst.installt:
            continue
        key = f"{p.instance_uid}:{p.student_uid}"
        if key in seen:  # two admissions of one student to one instance: one membership
            continue
        seen.add(key)
        objects.append(ScheduleObject("membership", key, {"grupp": group_id(p.instance_uid), "student": p.student_uid,
                                                          "roll": role}, instance_uid=p.instance_uid,
                                      term=startperiod(inst.start), organisation=inst.organisation))
        if p.student_uid not in students:
            students[p.student_uid] = student(p, emails.get(p.student_uid))
    objects.extend(students.values())
    objects.sort(key=lambda o: ORDER[o.kind])
    return objects


def student(p: Participant, email: str | None) -> ScheduleObject:
    """A protected student is the UID and the mark only: never a name or an e-mail."""
    if p.protected:
        return ScheduleObject("student", p.student_uid, {"skyddad": True})
    fields = {"fornamn": p.fornamn, "efternamn": p.efternamn, "epost": email}
    return ScheduleObject("student", p.student_uid, {k: v for k, v in fields.items() if v is not None})


@dataclasses.dataclass(frozen=True)
class Change:
    """What the export does with one object: ``upsert`` (new or changed), ``deactivate`` (an
    instance or group no longer in scope) or ``delete`` (a membership or student that ended)."""

    action: str
    obj: ScheduleObject


#: Held in these states, an object built again is sent again even with the same content: ended,
#: or found drifted by a reconciliation (which also retries what the system refused: ``rejected``).
RESEND = ("deleted", "drift")


def diff(built: list[ScheduleObject], held: Mapping[str, tuple[Any, ...]], *,
         removable: Iterable[str] = (), resend: tuple[str, ...] = RESEND) -> list[Change]:
    """Changes from what was exported (``held``: key -> (content hash, status, instance uid, ...))
    to ``built``. ``removable``: keys held that may end if not built (the caller knows its scope)."""
    out: list[Change] = []
    built_keys = set()
    for o in built:
        built_keys.add(o.key)
        h = held.get(o.key)
        if h is None or h[0] != o.content_hash or h[1] in resend:
            out.append(Change("upsert", o))
    for key in removable:
        if key in built_keys:
            continue
        h = held.get(key)
        if h is None or h[1] in ("deleted", "deactivated"):
            continue
        kind, _, ext_id = key.partition(":")
        if kind in ("membership", "student"):
            out.append(Change("delete", ScheduleObject(kind, ext_id, {}, active=False, instance_uid=h[2])))
        else:
            out.append(Change("deactivate", ScheduleObject(kind, ext_id, {}, active=False, instance_uid=h[2])))
    deletes = [c for c in out if c.action != "upsert"]
    # deletes after upserts; memberships before the students and groups they name
    deletes.sort(key=lambda c: -ORDER[c.obj.kind])
    return [c for c in out if c.action == "upsert"] + deletes
