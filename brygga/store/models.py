"""Tables of the adapter's own store. Change them only together with a new Alembic revision."""

from __future__ import annotations

import datetime as dt
from typing import Any, cast

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from brygga import tracing

# SQLite only autoincrements INTEGER PRIMARY KEY; PostgreSQL gets BIGINT identity columns.
PK = BigInteger().with_variant(Integer(), "sqlite")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def as_utc(t: dt.datetime) -> dt.datetime:
    """A time read back from the store, timezone-aware (SQLite gives naive UTC back)."""
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON, Any: JSON}


def table(model: type[Base]) -> Table:
    """The model's Table, for Core statements (bulk inserts and updates)."""
    return cast(Table, model.__table__)


class InboxMessage(Base):
    """Every inbound message id seen once (Ladok HandelseUID, NyA admission/återbud id ...)."""

    __tablename__ = "inbox_message"
    __table_args__ = (UniqueConstraint("source", "message_id", name="uq_inbox_source_message"),)

    id: Mapped[int] = mapped_column(PK, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(32))
    message_id: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(96))
    status: Mapped[str] = mapped_column(String(16), default="processed")  # processed|skipped|quarantined
    received_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class OutboxMessage(Base):
    """Outbound messages; the idempotency key makes a re-run enqueue nothing new."""

    __tablename__ = "outbox_message"
    __table_args__ = (Index("ix_outbox_due", "destination", "status", "next_attempt_at"),
                      Index("ix_outbox_queue", "destination", "status", "id"))

    id: Mapped[int] = mapped_column(PK, primary_key=True, autoincrement=True)
    destination: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(64))
    idempotency_key: Mapped[str] = mapped_column(String(255), unique=True)
    correlation: Mapped[str | None] = mapped_column(String(255), index=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending|sent|failed|dead|cancelled
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text)
    response: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    sent_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    traceparent: Mapped[str | None] = mapped_column(String(55), default=tracing.new)  # W3C trace context of its cause
    claimed_by: Mapped[str | None] = mapped_column(String(96))  # a claimed row's holder (kit.claimant)
    purged_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))  # personal data removed


class FeedCheckpoint(Base):
    """Where a feed consumer stands: archive page number and the last entry id handled on it."""

    __tablename__ = "feed_checkpoint"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    page: Mapped[int] = mapped_column(Integer, default=0)
    entry_id: Mapped[str | None] = mapped_column(String(128))
    events_seen: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class CheckpointHistory(Base):
    """Where a checkpoint stood when: one row each time its position (feed page, NyA sequence)
    moved, written with the move. A NyA stream is read again "since 14:00" from the position it
    had then (``brygga.flows.checkpoints.replay_sequence_since``)."""

    __tablename__ = "checkpoint_history"
    __table_args__ = (Index("ix_checkpoint_history_name_at", "name", "at"),)

    id: Mapped[int] = mapped_column(PK, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64))
    position: Mapped[int] = mapped_column(BigInteger)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class UnhandledAdmission(Base):
    """Ej hanterad antagning: an admission that could not be placed, with its hinder."""

    __tablename__ = "unhandled_admission"
    __table_args__ = (Index("ix_unhandled_round_hinder_status", "round", "hinder", "status"),
                      Index("ix_unhandled_status_created", "status", "created_at"),
                      Index("ix_unhandled_status_programme", "status", "programme_code"))

    id: Mapped[int] = mapped_column(PK, primary_key=True, autoincrement=True)
    nya_admission_id: Mapped[str] = mapped_column(String(64), unique=True)
    round: Mapped[str] = mapped_column(String(32))
    personnummer: Mapped[str | None] = mapped_column(String(12))
    utbildningstillfalle_uid: Mapped[str | None] = mapped_column(String(64))
    tillfalleskod: Mapped[str | None] = mapped_column(String(32))
    programme_code: Mapped[str | None] = mapped_column(String(32))  # the admission's programme, if any
    hinder: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text)
    candidates: Mapped[list[Any]] = mapped_column(JSON, default=list)  # package options to choose from
    admission: Mapped[dict[str, Any]] = mapped_column(JSON)  # the admission record, for ompröva
    status: Mapped[str] = mapped_column(String(16), default="open")  # open|resolved|manual
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)
    resolved_by: Mapped[str | None] = mapped_column(String(128))
    resolution: Mapped[str | None] = mapped_column(String(255))
    resolved_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))  # left the queue (or None)
    purged_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))  # personal data removed


class AterbudCase(Base):
    """Återbudsärende: an återbud from NyA that could not be applied in Ladok."""

    __tablename__ = "aterbud_case"
    __table_args__ = (Index("ix_aterbud_case_status", "status", "round"),)

    id: Mapped[int] = mapped_column(PK, primary_key=True, autoincrement=True)
    nya_aterbud_id: Mapped[str] = mapped_column(String(64), unique=True)
    round: Mapped[str | None] = mapped_column(String(32))
    nya_admission_id: Mapped[str | None] = mapped_column(String(64))
    personnummer: Mapped[str | None] = mapped_column(String(12))
    utbildningstillfalle_uid: Mapped[str | None] = mapped_column(String(64))
    education: Mapped[str | None] = mapped_column(String(255))  # code and name, for people
    reported_at: Mapped[dt.date | None] = mapped_column(Date)
    cause: Mapped[str] = mapped_column(String(32))  # registered|already_aterbud
    suggested_action: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="open")  # open|closed
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    closed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    closed_by: Mapped[str | None] = mapped_column(String(128))
    note: Mapped[str | None] = mapped_column(Text)
    antagning_uid: Mapped[str | None] = mapped_column(String(64))  # Ladok tillfällesantagning
    study_start: Mapped[dt.date | None] = mapped_column(Date)  # for the 3-week (early avbrott) rule
    purged_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))  # personal data removed


class NyaAdmission(Base):
    """An admission from NyA (admitted and accepted), and what Brygga did with it in Ladok.

    The row is written when the admission is read (with the round's NextSequence checkpoint, in one
    transaction); placing it moves ``state`` on: pending -> placed | unhandled | declined, and an
    operator may later take an unhandled one to placed or handled.
    """

    __tablename__ = "nya_admission"
    __table_args__ = (Index("ix_nya_admission_round_state", "round", "state"),
                      Index("ix_nya_admission_state_personnummer", "state", "personnummer", "admission_id"))

    admission_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    round: Mapped[str] = mapped_column(String(32))
    sequence: Mapped[int] = mapped_column(BigInteger)
    personnummer: Mapped[str | None] = mapped_column(String(12))
    offer_id: Mapped[str | None] = mapped_column(String(64))
    utbildningskod: Mapped[str | None] = mapped_column(String(32))
    tillfalleskod: Mapped[str | None] = mapped_column(String(32))
    programme_internal: Mapped[bool] = mapped_column(Boolean, default=False)
    package_id: Mapped[str | None] = mapped_column(String(64))  # NyA PackageId = Ladok programme instance uid
    fee_liable: Mapped[bool] = mapped_column(Boolean, default=False)  # avgiftsskyldig
    application_fee_paid: Mapped[bool | None] = mapped_column(Boolean)  # betald anmälningsavgift
    conditions: Mapped[list[Any]] = mapped_column(JSON, default=list)  # behörighetsvillkor [{code, text, lifted}]
    aterbud_date: Mapped[str | None] = mapped_column(String(10))
    record: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # the admission as read, for ompröva
    state: Mapped[str] = mapped_column(String(16), default="pending")  # pending|placed|unhandled|handled|declined|invalid
    student_uid: Mapped[str | None] = mapped_column(String(64))
    utbildningstillfalle_uid: Mapped[str | None] = mapped_column(String(64))
    antagning_uid: Mapped[str | None] = mapped_column(String(64), index=True)  # Ladok tillfällesantagning
    package_uid: Mapped[str | None] = mapped_column(String(64))  # kurspaketeringstillfälle it was placed in
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    transient_failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # in a row
    failing_since: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))  # the first of them
    placed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))  # Ladok took the placement
    last_error: Mapped[str | None] = mapped_column(Text)
    claimed_by: Mapped[str | None] = mapped_column(String(96))  # the placement process working on it
    claimed_until: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    traceparent: Mapped[str | None] = mapped_column(String(55))  # W3C trace context, from when it was read
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)
    purged_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))  # personal data removed


class Setting(Base):
    """University settings that operators change at run time (e.g. whether återbud is taken from NyA)."""

    __tablename__ = "setting"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[Any] = mapped_column(JSON)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)
    updated_by: Mapped[str | None] = mapped_column(String(128))


class Publication(Base):
    """One run of the offer export (utbud): who, what, dry-run or real, and NyA's answer."""

    __tablename__ = "publication"

    id: Mapped[int] = mapped_column(PK, primary_key=True, autoincrement=True)
    round: Mapped[str] = mapped_column(String(32), index=True)
    kind: Mapped[str] = mapped_column(String(32))  # ordinary|programme-internal
    selection: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    dry_run: Mapped[bool] = mapped_column(Boolean, default=True)
    triggered_by: Mapped[str | None] = mapped_column(String(128))
    run_id: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16), default="running")  # running|done|partial|failed
    counts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    started_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class PublicationItem(Base):
    __tablename__ = "publication_item"
    __table_args__ = (Index("ix_publication_item_pub", "publication_id", "action"),)

    id: Mapped[int] = mapped_column(PK, primary_key=True, autoincrement=True)
    publication_id: Mapped[int] = mapped_column(ForeignKey("publication.id", ondelete="CASCADE"))
    offer_id: Mapped[str] = mapped_column(String(64))
    tillfalleskod: Mapped[str | None] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(16))  # new|changed|withdrawn|unchanged|invalid
    content_hash: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="planned")  # planned|sent|rejected|invalid
    message: Mapped[str | None] = mapped_column(Text)
    payload: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # the offer as sent (None for withdrawals)


class PublishedOffer(Base):
    """What NyA currently has from us, per round and kind: the base of the next diff."""

    __tablename__ = "published_offer"
    __table_args__ = (UniqueConstraint("round", "kind", "offer_id", name="uq_published_offer"),)

    id: Mapped[int] = mapped_column(PK, primary_key=True, autoincrement=True)
    round: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(32))
    offer_id: Mapped[str] = mapped_column(String(64))
    content_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="active")  # active|withdrawn
    publication_id: Mapped[int | None] = mapped_column(ForeignKey("publication.id", ondelete="SET NULL"))
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class ScheduleObject(Base):
    """What a scheduling system has from us, per target (format) and object: the base of the
    schedule export's delta. ``content_hash`` is the version last put in the outbox (what the
    system will hold), ``outbox_id`` the batch (outbox message) that carries it: while that batch
    is unsent the version is in flight; no personal data is kept here."""

    __tablename__ = "schedule_object"
    __table_args__ = (UniqueConstraint("target", "kind", "ext_id", name="uq_schedule_object"),
                      Index("ix_schedule_object_instance", "target", "instance_uid"))

    id: Mapped[int] = mapped_column(PK, primary_key=True, autoincrement=True)
    target: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(16))
    ext_id: Mapped[str] = mapped_column(String(160))
    instance_uid: Mapped[str | None] = mapped_column(String(64))
    term: Mapped[str | None] = mapped_column(String(8))  # the instance's start term (HT2027): a full run's scope
    organisation: Mapped[str | None] = mapped_column(String(64))  # the instance's organisation unit
    content_hash: Mapped[str] = mapped_column(String(64))
    outbox_id: Mapped[int | None] = mapped_column(PK)  # the outbox batch of the latest version (not a foreign key: purged)
    version: Mapped[int] = mapped_column(Integer, default=1)  # +1 per change put in the outbox
    status: Mapped[str] = mapped_column(String(16), default="active")  # active|deactivated|deleted|rejected
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class SchedulePlan(Base):
    """A full (or reconciling) schedule export run that would end more of its scope than the
    guard allows (``removal_guard``): its removals are held here (``schedule_removal``) until an
    operator approves them (they go to the outbox then) or rejects them; the rest of the run went."""

    __tablename__ = "schedule_plan"
    __table_args__ = (Index("ix_schedule_plan_status", "target", "status"),)

    id: Mapped[int] = mapped_column(PK, primary_key=True, autoincrement=True)
    target: Mapped[str] = mapped_column(String(32))
    mode: Mapped[str] = mapped_column(String(16))  # full | reconcile
    terms: Mapped[list[str]] = mapped_column(JSON)
    organisation: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))  # staging | held | approved | rejected | superseded
    removals: Mapped[int] = mapped_column(Integer, default=0)  # objects the run would end
    scope_objects: Mapped[int] = mapped_column(Integer, default=0)  # live objects of the scope before the run
    counts: Mapped[dict[str, int]] = mapped_column(JSON)  # "<action>.<kind>" -> how many
    reason: Mapped[str | None] = mapped_column(Text)  # why it was held
    run_id: Mapped[str | None] = mapped_column(String(250))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    decided_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    decided_by: Mapped[str | None] = mapped_column(String(128))


class ScheduleRemoval(Base):
    """One object a held plan would end: delete (membership, student) or deactivate (instance, group)."""

    __tablename__ = "schedule_removal"
    __table_args__ = (Index("ix_schedule_removal_plan", "plan_id", "id"),)

    id: Mapped[int] = mapped_column(PK, primary_key=True, autoincrement=True)
    plan_id: Mapped[int] = mapped_column(PK)
    action: Mapped[str] = mapped_column(String(16))  # delete | deactivate
    kind: Mapped[str] = mapped_column(String(16))
    ext_id: Mapped[str] = mapped_column(String(160))
    instance_uid: Mapped[str | None] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)  # the object's version when planned: a later one wins


class ScheduleDirty(Base):
    """Instances a Ladok event touched since the schedule export last looked at them."""

    __tablename__ = "schedule_dirty"

    instance_uid: Mapped[str] = mapped_column(String(64), primary_key=True)
    marked_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    events: Mapped[int] = mapped_column(Integer, default=1)


class LadokContact(Base):
    """A student's e-mail address as Ladok had it (si:Kontaktuppgifter), so a full export does not
    ask Ladok again for every student every night; refreshed after its age limit. Purged with the
    student's other personal data by retention."""

    __tablename__ = "ladok_contact"

    student_uid: Mapped[str] = mapped_column(String(64), primary_key=True)
    email: Mapped[str | None] = mapped_column(String(254))
    fetched_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class NyaMerit(Base):
    """A Ladok merit as NyA should hold it: one row per Ladok object (``ref`` = ladok:<kind>:<uid>),
    whichever path found it (the feed, or the snapshot taken when the student applied). The merit
    sync's ledger: a merit already queued or sent with the same content is not sent again, a
    changed one is sent as a new ``version``, a retracted one is withdrawn (or, never sent, not sent
    at all). ``held``: NyA acknowledged holding a version of it (set by the sender)."""

    __tablename__ = "nya_merit"
    __table_args__ = (Index("ix_nya_merit_personnummer", "personnummer"),)

    ref: Mapped[str] = mapped_column(String(120), primary_key=True)
    merit_id: Mapped[str] = mapped_column(String(100))  # what NyA knows it by (== ref, or a legacy HandelseUID)
    personnummer: Mapped[str] = mapped_column(String(12))
    type: Mapped[str] = mapped_column(String(32))
    content_hash: Mapped[str | None] = mapped_column(String(64))  # of the latest content queued
    content: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # the latest merit queued (to send it again)
    version: Mapped[int] = mapped_column(Integer, default=1)  # +1 per change queued (the outbox key's)
    state: Mapped[str] = mapped_column(String(16), default="present")  # present | withdrawn
    held: Mapped[bool] = mapped_column(Boolean, default=False)
    source: Mapped[str] = mapped_column(String(16), default="feed")  # feed | snapshot
    event_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))  # in Ladok (feed entry)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class NyaApplicant(Base):
    """An applicant of a NyA round, remembered as they first appear in the round's applicant stream
    (``GetApplicants``), and whether the merits Ladok already has for them were sent (the snapshot
    taken when they apply): pending -> done | no_student; claimed with a lease while it is taken."""

    __tablename__ = "nya_applicant"
    __table_args__ = (UniqueConstraint("round", "personnummer", name="uq_nya_applicant"),
                      Index("ix_nya_applicant_state", "snapshot", "id"),
                      Index("ix_nya_applicant_personnummer", "personnummer"))

    id: Mapped[int] = mapped_column(PK, primary_key=True, autoincrement=True)
    round: Mapped[str] = mapped_column(String(32))
    personnummer: Mapped[str] = mapped_column(String(12))
    sequence: Mapped[int] = mapped_column(BigInteger)  # its place in the round's applicant stream
    snapshot: Mapped[str] = mapped_column(String(16), default="pending")  # pending | done | no_student
    merits: Mapped[int] = mapped_column(Integer, default=0)  # merits the snapshot found
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    claimed_by: Mapped[str | None] = mapped_column(String(96))
    claimed_until: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    snapshot_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class ReconciliationRun(Base):
    """One run of the nightly NyA↔Ladok reconciliation (avstämning): when, which rounds, what it
    found per kind (the statistics' counts over time)."""

    __tablename__ = "reconciliation_run"

    id: Mapped[int] = mapped_column(PK, primary_key=True, autoincrement=True)
    started_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    rounds: Mapped[list[Any]] = mapped_column(JSON, default=list)
    dry_run: Mapped[bool] = mapped_column(Boolean, default=False)
    counts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # kind -> drift rows found
    compared: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # what was compared (admissions, merits …)
    actor: Mapped[str] = mapped_column(String(128))


class Drift(Base):
    """Where NyA and Ladok disagree (avvikelse), as a reconciliation found it: its kind, the
    admission or merit it is about, what each side holds, and the action that repairs it. Open
    until an operator repairs or dismisses it, or a later run no longer finds it (gone)."""

    __tablename__ = "drift"
    __table_args__ = (Index("ix_drift_status_kind", "status", "kind"), Index("ix_drift_kind_subject", "kind", "subject"))

    id: Mapped[int] = mapped_column(PK, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(Integer)  # the run that last found it
    round: Mapped[str | None] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(48))
    subject: Mapped[str] = mapped_column(String(160))  # the admission id or the merit's Ladok reference
    personnummer: Mapped[str | None] = mapped_column(String(12))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    action: Mapped[str] = mapped_column(String(32))  # what repairs it (see states.DRIFT_ACTIONS)
    status: Mapped[str] = mapped_column(String(16), default="open")  # open|repaired|dismissed|gone
    found_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_seen_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    resolved_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    resolved_by: Mapped[str | None] = mapped_column(String(128))
    note: Mapped[str | None] = mapped_column(Text)


class LadokGrade(Base):
    """A grade of one of Ladok's grade scales (grunddata ``betygsskala``) as Ladok last listed it:
    the merit sync reads a result's ``BetygsgradID`` through these rows. Read again from Ladok when
    a result names a grade or scale not here (once per run), never hard-coded."""

    __tablename__ = "ladok_grade"

    grade_id: Mapped[str] = mapped_column(String(32), primary_key=True)  # base:ID of ki:Betygsgrad
    scale_id: Mapped[str] = mapped_column(String(32))
    scale_code: Mapped[str] = mapped_column(String(32))  # AF, PF, UV …
    code: Mapped[str] = mapped_column(String(32))  # A … F, FX, P, G, VG, U …
    valid_final: Mapped[bool] = mapped_column(Boolean, default=True)  # GiltigSomSlutbetyg
    fetched_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Quarantine(Base):
    """Bad input set aside with its reason; the rest of its batch went on."""

    __tablename__ = "quarantine"
    __table_args__ = (Index("ix_quarantine_source", "source", "created_at"),
                      Index("ix_quarantine_message", "source", "message_id"))

    id: Mapped[int] = mapped_column(PK, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(32))
    message_id: Mapped[str | None] = mapped_column(String(128))
    kind: Mapped[str | None] = mapped_column(String(96))
    reason: Mapped[str] = mapped_column(Text)
    payload: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=1, server_default="1")  # times met (unreadable input)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_seen_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    released_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    purged_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))  # personal data removed


class AuditLog(Base):
    """Who did what, when: operator actions and every automatic effect on a peer."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_object", "object_type", "object_id"),)

    id: Mapped[int] = mapped_column(PK, primary_key=True, autoincrement=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(64))
    object_type: Mapped[str] = mapped_column(String(64))
    object_id: Mapped[str | None] = mapped_column(String(128))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    purged_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))  # personal data removed


class ArchivePackage(Base):
    """One package (or one part of a split package) delivered to the archive: what it holds, its
    deterministic id, and the archive's receipt. ``created_at`` is kept from the first build, so a
    rebuild after a crash writes the very same bytes. No personal data is kept here."""

    __tablename__ = "archive_package"
    __table_args__ = (UniqueConstraint("package_id", name="uq_archive_package"),
                      Index("ix_archive_package_subject", "subject_kind", "subject_uid"))

    id: Mapped[int] = mapped_column(PK, primary_key=True, autoincrement=True)
    package_id: Mapped[str] = mapped_column(String(100))  # the METS OBJID
    subject_kind: Mapped[str] = mapped_column(String(16))  # kurstillfalle
    subject_uid: Mapped[str] = mapped_column(String(64))
    part: Mapped[int] = mapped_column(Integer, default=1)
    parts: Mapped[int] = mapped_column(Integer, default=1)
    content_sha256: Mapped[str] = mapped_column(String(64))  # over the data files of the whole subject
    size: Mapped[int | None] = mapped_column(BigInteger)  # bytes of the zip
    files: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="built")  # built|accepted|rejected
    archive_id: Mapped[str | None] = mapped_column(String(128))
    reasons: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    received_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class AlertSubscription(Base):
    """Who is told when a kind of trouble starts and ends (``brygga/flows/alerts``): a kind, its
    threshold, how long it must last, the addresses; changed on the console's Bevakningar page."""

    __tablename__ = "alert_subscription"

    id: Mapped[int] = mapped_column(PK, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(32))
    threshold: Mapped[float] = mapped_column(Float)
    for_minutes: Mapped[int] = mapped_column(Integer, default=0)  # the breach must last this long
    recipients: Mapped[str] = mapped_column(Text)  # e-mail addresses, comma-separated
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    breach_since: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))  # above it since
    organisation: Mapped[str | None] = mapped_column(String(64))  # a digest's organisation unit (None: all)
    last_sent_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))  # a digest's window end
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)
    updated_by: Mapped[str | None] = mapped_column(String(128))


class AlertEpisode(Base):
    """One episode of a subscription's trouble: opened (one message), resolved (one message)."""

    __tablename__ = "alert_episode"
    __table_args__ = (Index("ix_alert_episode_open", "subscription_id", "resolved_at"),)

    id: Mapped[int] = mapped_column(PK, primary_key=True, autoincrement=True)
    subscription_id: Mapped[int] = mapped_column(PK)
    kind: Mapped[str] = mapped_column(String(32))
    opened_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    resolved_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    value_open: Mapped[float] = mapped_column(Float)
    value_last: Mapped[float] = mapped_column(Float)
    peak: Mapped[float] = mapped_column(Float)
