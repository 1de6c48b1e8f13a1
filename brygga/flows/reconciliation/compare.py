"""The reconciliation's rules (avstämning): given what NyA holds and what Ladok holds for a round,
where they disagree and what repairs it. Pure: the callers read both sides through their gateways.

Admissions: every admission NyA transferred (admitted and accepted) that Brygga placed or an
operator settled (one still pending or queued is Brygga's own business, shown in the queue) is
looked for among Ladok's participants of its instance, by student and instance:

* not there → ``admission.missing_in_ladok`` (place again);
* there with an återbud Ladok has and NyA lacks → ``aterbud.only_in_ladok`` (report it to NyA);
* NyA has an återbud and Ladok's participant is active → ``aterbud.only_in_nya`` (an återbudsärende),
  unless an återbudsärende for it is open already (the operator's work in hand, not drift);
* NyA's open villkor differ from Ladok's on the tillfällesantagning → ``villkor.differ`` (align);
* placed in another package than NyA's PackageId (as Brygga recorded it) → ``admission.wrong_package``
  (to the queue, to ompröva).

Merits (per applicant with merits in the ledger, what Brygga read from Ladok): one NyA acknowledged
and no longer holds → ``merit.missing_in_nya``; held in other content → ``merit.other_version``
(send again); one Ladok took back that NyA still holds → ``merit.withdrawn_in_ladok`` (withdraw)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

from brygga.records import Admission, Merit, Participant
from brygga.states import AdmissionState, DriftAction, DriftKind

#: Ladok participant states in which the admission is given up.
GONE = {"aterbud"}
#: What Brygga placed or an operator settled: these are compared with Ladok.
SETTLED = {AdmissionState.PLACED, AdmissionState.HANDLED}


@dataclasses.dataclass(frozen=True)
class Found:
    kind: str
    subject: str  # the admission id, or the merit's Ladok reference
    round: str | None
    personnummer: str | None
    action: str
    detail: dict[str, Any]


@dataclasses.dataclass(frozen=True)
class Placed:
    """What Brygga's store says of an admission (``nya_admission``)."""

    state: str
    student_uid: str | None
    antagning_uid: str | None
    package_uid: str | None
    instance_uid: str | None  # where Brygga placed it (an offer's id need not be the instance's)

    def instance(self, a: Admission) -> str:
        return self.instance_uid or a.offer_id


def best(participants: Iterable[Participant]) -> dict[tuple[str, str], Participant]:
    """One participant per (student, instance): an active one before one given up."""
    out: dict[tuple[str, str], Participant] = {}
    for p in participants:
        key = (p.student_uid, p.instance_uid)
        cur = out.get(key)
        if cur is None or (cur.state in GONE and p.state not in GONE):
            out[key] = p
    return out


def admissions(round_code: str, nya: list[Admission], placed: dict[str, Placed], students: dict[str, str],
               ladok: dict[tuple[str, str], Participant], villkor: dict[str, set[str]],
               open_cases: frozenset[str] | set[str] = frozenset()) -> list[Found]:
    """The drift of a round's admissions. ``students``: personnummer -> Ladok student uid;
    ``villkor``: tillfällesantagning uid -> the villkor Ladok has (only those asked); ``open_cases``:
    admission ids with an open återbudsärende."""
    out: list[Found] = []
    for a in nya:
        row = placed.get(a.admission_id)
        if row is None or row.state not in SETTLED:
            continue
        student = row.student_uid or students.get(a.personnummer)
        p = ladok.get((student, row.instance(a))) if student else None
        base = {"offer_id": a.offer_id, "utbildningskod": a.utbildningskod, "tillfalleskod": a.tillfalleskod,
                "brygga_state": row.state}
        if a.aterbud_date:
            if p is not None and p.state not in GONE and a.admission_id not in open_cases:
                out.append(Found(DriftKind.ATERBUD_ONLY_IN_NYA, a.admission_id, round_code, a.personnummer,
                                 DriftAction.OPEN_CASE, {**base, "nya_aterbud": a.aterbud_date, "ladok_state": p.state,
                                                         "antagning_uid": p.uid}))
            continue
        if p is None:
            out.append(Found(DriftKind.ADMISSION_MISSING_IN_LADOK, a.admission_id, round_code, a.personnummer,
                             DriftAction.PLACE_AGAIN, {**base, "student_uid": student}))
            continue
        if p.state in GONE:
            out.append(Found(DriftKind.ATERBUD_ONLY_IN_LADOK, a.admission_id, round_code, a.personnummer,
                             DriftAction.REPORT_ATERBUD, {**base, "ladok_state": p.state, "antagning_uid": p.uid}))
            continue
        if a.package_id and row.package_uid and row.package_uid != a.package_id:
            out.append(Found(DriftKind.ADMISSION_WRONG_PACKAGE, a.admission_id, round_code, a.personnummer,
                             DriftAction.OMPROVA, {**base, "nya_package": a.package_id, "ladok_package": row.package_uid}))
        if p.uid in villkor:
            open_in_nya = {c.code for c in a.conditions if not c.lifted}
            if open_in_nya != villkor[p.uid]:
                out.append(Found(DriftKind.VILLKOR_DIFFER, a.admission_id, round_code, a.personnummer,
                                 DriftAction.SYNC_VILLKOR, {**base, "nya": sorted(open_in_nya),
                                                            "ladok": sorted(villkor[p.uid]), "antagning_uid": p.uid}))
    return out


def needs_villkor(a: Admission, in_ladok: set[str]) -> bool:
    """Whether an admission's villkor are worth asking Ladok for: NyA has some open, or Brygga put some on."""
    return bool(in_ladok) or any(not c.lifted for c in a.conditions)


@dataclasses.dataclass(frozen=True)
class Ledgered:
    """What the ledger says of a merit (``nya_merit``): NyA's id for it, its state, its content hash."""

    ref: str
    merit_id: str
    state: str
    held: bool
    content_hash: str | None


def merits(personnummer: str, ledger: list[Ledgered], held: list[Merit]) -> list[Found]:
    """The drift of one applicant's merits. ``held``: what NyA holds (``GetApplicantMerits``)."""
    in_nya = {m.merit_id: m for m in held}
    out: list[Found] = []
    for row in ledger:
        m = in_nya.get(row.merit_id)
        if row.state == "present" and row.held and m is None:
            out.append(Found(DriftKind.MERIT_MISSING_IN_NYA, row.ref, None, personnummer, DriftAction.SEND_MERIT,
                             {"merit_id": row.merit_id}))
        elif row.state == "present" and m is not None and row.content_hash and m.content_hash() != row.content_hash:
            out.append(Found(DriftKind.MERIT_OTHER_VERSION, row.ref, None, personnummer, DriftAction.SEND_MERIT,
                             {"merit_id": row.merit_id, "nya_grade": m.grade, "nya_date": m.date}))
        elif row.state == "withdrawn" and m is not None:
            out.append(Found(DriftKind.MERIT_WITHDRAWN_IN_LADOK, row.ref, None, personnummer,
                             DriftAction.WITHDRAW_MERIT, {"merit_id": row.merit_id}))
    return out
