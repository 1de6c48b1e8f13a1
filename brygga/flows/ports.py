"""The peers as the flows see them: one ``typing.Protocol`` per peer, the gateway's signature.

Flows depend on these, never on an adapter class, a wire name or a field: the adapters in
``adapters/`` implement them over HTTP (``LadokAdapter``, ``NyaAdapter``, ...), and unit tests
implement them with fakes in memory (``tests/unit/fakes.py``), so a flow's steps are tested in
milliseconds. A peer's refusals and failures reach a flow as the adapters' errors
(``adapters.http.PeerError`` and its kinds), which say whether a retry can help.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Protocol, TypeVar

from brygga.config import ScheduleSettings
from brygga.records import (
    Admission,
    Applicant,
    ArchiveReceipt,
    AterbudReport,
    ConditionChange,
    FeedPage,
    GradeScale,
    LadokEvent,
    Merit,
    NyaAterbud,
    Offer,
    Placement,
    PlanNode,
    Student,
    Utbildningstillfalle,
)
from mappings.base import RecordError

#: {record id: (outcome, reason)}: a peer's answer per record of one request.
Results = dict[str, tuple[str, "str | None"]]

T_co = TypeVar("T_co", covariant=True)


class SequenceReply(Protocol[T_co]):
    """A round's stream read from NyA: records in sequence order (a ``RecordError`` in place of one
    that breaks the contract), and the sequence to read from next, known once the reply is read."""

    next_sequence: int | None

    def __iter__(self) -> Iterator[T_co | RecordError]: ...


class Nya(Protocol):
    """NyA (antagning.se's admissions system)."""

    def open_rounds(self) -> list[str]: ...

    def applicants(self, round_code: str) -> set[str]: ...

    def admissions(self, round_code: str, from_sequence: int = 0
                   ) -> AbstractContextManager[SequenceReply[Admission]]: ...

    def condition_changes(self, round_code: str, from_sequence: int = 0
                          ) -> AbstractContextManager[SequenceReply[ConditionChange]]: ...

    def aterbud(self, round_code: str, from_sequence: int = 0) -> AbstractContextManager[SequenceReply[NyaAterbud]]: ...

    def applicant_merits(self, personnummer: str) -> list[Merit]: ...

    def applicant_stream(self, round_code: str, from_sequence: int = 0
                         ) -> AbstractContextManager[SequenceReply[Applicant]]: ...

    def invalid_offers(self, kind: str, offers: list[Offer], round_code: str) -> dict[str, str]: ...

    def publish_offers(self, kind: str, offers: list[Offer], round_code: str, request_id: str) -> Results: ...

    def withdraw_offers(self, offer_ids: list[str], round_code: str, reason: str, request_id: str) -> Results: ...

    def invalid_merits(self, merits: list[Merit]) -> dict[str, str]: ...

    def submit_merits(self, merits: list[Merit], request_id: str) -> Results: ...

    def withdraw_merits(self, merit_ids: list[str], request_id: str, reason: str | None = None) -> Results: ...

    def report_aterbud(self, reports: list[AterbudReport], round_code: str, request_id: str) -> Results: ...


class OfferContract(Protocol):
    """What NyA's contract refuses, without a connection (the offer export's dry run)."""

    def invalid_offers(self, kind: str, offers: list[Offer], round_code: str) -> dict[str, str]: ...


class Ladok(Protocol):
    """Ladok: its REST resources and its Atom feed."""

    @property
    def concurrency(self) -> int: ...

    # the feed
    def feed_page(self, number: int | None = None, *, url: str | None = None, first: bool = False) -> FeedPage: ...

    # kataloginformation
    def grade_scales(self) -> list[GradeScale]: ...

    # the catalogue
    def tillfalle(self, uid: str) -> Utbildningstillfalle: ...

    def tillfalle_or_error(self, uid: str) -> Utbildningstillfalle | RecordError | None: ...

    def search_tillfallen(self, *, round_code: str | None = None, tillfalleskod: str | None = None,
                          utbildningskod: str | None = None, startperiod: str | None = None,
                          organisation_uid: str | None = None, limit: int = 400) -> Iterator[str]: ...

    def participants(self, instances: list[Utbildningstillfalle], *, limit: int = 2000) -> Iterator[Any]: ...

    # students
    def student(self, uid: str) -> Student: ...

    def student_by_personnummer(self, personnummer: str) -> Student | None: ...

    def students_by_personnummer(self, pnrs: list[str], *, batch: int = 200) -> dict[str, Student]: ...

    def establish(self, student: Student) -> Student: ...

    def email(self, student_uid: str) -> str | None: ...

    def is_protected(self, student_uid: str) -> bool: ...

    # study plans
    def place(self, placement: Placement) -> dict[str, str | None]: ...

    def study_plan(self, student_uid: str) -> list[PlanNode]: ...

    def study_plan_educations(self, student_uid: str) -> list[dict[str, str | None]]: ...

    def student_merits(self, student_uid: str) -> list[LadokEvent]: ...

    def villkor(self, antagning_uid: str) -> list[str]: ...

    def add_villkor(self, antagning_uid: str, code: str) -> list[str]: ...

    def lift_villkor(self, antagning_uid: str, code: str) -> bool: ...

    def aterbud(self, antagning_uid: str, date: dt.date | str, *, cause: str = "meddelat_av_studenten",
                externt_system: str | None = None) -> dict[str, str | None]: ...

    def existing_aterbud(self, antagning_uid: str) -> dict[str, str | None] | None: ...

    def avbrott(self, antagning_uid: str, date: dt.date | str, *,
                externreferens: str | None = None) -> dict[str, Any]: ...

    # Ladok's own documents (the archive keeps them as Ladok wrote them)
    def tillfalle_document(self, uid: str) -> bytes | None: ...

    def deltagare_documents(self, uid: str, *, limit: int = 2000) -> Iterator[tuple[bytes, list[Any]]]: ...

    def resultat_document(self, student_uid: str) -> bytes | None: ...

    def bevis_document(self, uid: str) -> bytes | None: ...

    def bevis_search_documents(self, fran: dt.date, till: dt.date, *, limit: int = 400) -> Iterator[bytes]: ...


class PopulationRegister(Protocol):
    """The population register (folkbokföring): people by personnummer (None: not found)."""

    def lookup(self, personnummer: Iterable[str]) -> dict[str, Student | None | RecordError]: ...


class Scheduling(Protocol):
    """A scheduling system (TimeEdit REST or files, IMS LIS records, OneRoster CSV). A change is
    encoded once, when it is planned (``encode``: the lane it goes by and its wire item, opaque
    to the flow); ``deliver`` sends a batch of items."""

    @property
    def target(self) -> str: ...

    @property
    def settings(self) -> ScheduleSettings: ...

    @property
    def batch(self) -> int: ...

    def encode(self, change: dict[str, Any]) -> tuple[str, Any] | RecordError | None: ...

    def deliver(self, lane: str, items: list[Any], keys: list[str], versions: list[int],
                request_id: str) -> Results: ...

    def validate(self, changes: list[dict[str, Any]]) -> tuple[Results, list[RecordError]]: ...

    def pages(self, *, limit: int = 1000) -> Iterator[dict[str, tuple[str, bool]]]: ...


class Archive(Protocol):
    """The digital archive (e-arkiv): E-ARK SIP packages and the archive's receipts."""

    def submit(self, package: Path) -> ArchiveReceipt: ...

    def held(self, objid: str) -> ArchiveReceipt | None: ...
