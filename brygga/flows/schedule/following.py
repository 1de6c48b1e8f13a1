"""Ladok's feed → the instances the schedule export looks at again (``schedule_dirty``), through
the shared feed follower: the marks and the checkpoint in one transaction per batch. Any event
that names an instance counts: admission, registration, återbud, avbrott, inställt, status, and
the self-service and catalogue changes (an instance switch, ``OmregistreringEvent``, marks the
instance left too; ``ForvantatDeltagandeBorttagetEvent``, ``UtbildningstillfalleAteraktiveratEvent``,
``KurstillfalleUppdateratEvent``), so they reach the scheduler with the next delta run.

A student whose contact details change (``KontaktuppgifterEvent``) or who becomes protected
(``SkyddadePersonuppgifterEvent``) has their cached e-mail address (``ladok_contact``) forgotten
and every instance they are a member of marked, so the new address — or the protected form, no
name, no e-mail — goes out with the next delta. A protected student's name and e-mail also leave
Brygga's own store at once: the kept outbox batches that carry them lose them (``queue.scrub``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

from brygga.flows.kit.feed import Batch, FeedFollower
from brygga.flows.ports import Ladok
from brygga.flows.schedule import FLOW, queue
from brygga.store import Store
from brygga.store.models import LadokContact, ScheduleDirty, ScheduleObject, utcnow

#: The instances an event names (an OmregistreringEvent names the one the student left too).
FIELDS = ("UtbildningstillfalleUID", "KurstillfalleUID", "ForegaendeKurstillfalleUID")
MAX_UID = 64
PROTECTED = "SkyddadePersonuppgifterEvent"
CONTACT = "KontaktuppgifterEvent"


def students_of(batch: Batch, *types: str) -> set[str]:
    return {e.student_uid for e in batch.events
            if e.event_type in types and e.student_uid and len(e.student_uid) <= MAX_UID}


def forget_contact(s: Session, students: set[str], marks: dict[str, int]) -> None:
    """Their cached e-mail addresses forgotten; the instances they are members of marked."""
    s.execute(delete(LadokContact).where(LadokContact.student_uid.in_(sorted(students))))
    for uid in students:
        for instance in s.scalars(select(ScheduleObject.instance_uid).distinct().where(
                ScheduleObject.kind == "membership", ScheduleObject.ext_id.like(f"%:{uid}"))):
            if instance:
                marks[instance] = marks.get(instance, 0) + 1


def instances_of(batch: Batch) -> dict[str, int]:
    marks: dict[str, int] = {}
    for e in batch.events:
        for f in FIELDS:
            uid = e.fields.get(f)
            if isinstance(uid, str) and 0 < len(uid) <= MAX_UID:
                marks[uid] = marks.get(uid, 0) + 1
    return marks


class ScheduleFeed(FeedFollower):
    """Marks the instances a batch's events name, with the checkpoint, in one transaction."""

    flow = FLOW
    consumer = "the schedule export"
    consequence = "Instances changed in the gap reach the scheduling system with the next full export (nightly)"
    skip_unreadable_after = 3  # the nightly full export repairs what a skipped page held

    def __init__(self, store: Store, ladok: Ladok, **kw: Any):
        super().__init__(store, ladok, **kw)
        self.marked = self.scrubbed = 0

    def apply(self, s: Session, batch: Batch, prepared: Any) -> None:
        marks = instances_of(batch)
        changed = students_of(batch, PROTECTED, CONTACT)
        if changed:
            forget_contact(s, changed, marks)
            self.scrubbed += queue.scrub(s, students_of(batch, PROTECTED))
        if not marks:
            return
        now = utcnow()
        uids = sorted(marks)
        existing: set[str] = set()
        for i in range(0, len(uids), 500):
            existing.update(s.scalars(select(ScheduleDirty.instance_uid).where(
                ScheduleDirty.instance_uid.in_(uids[i:i + 500]))))
        for uid in existing:
            s.execute(update(ScheduleDirty).where(ScheduleDirty.instance_uid == uid)
                      .values(marked_at=now, events=ScheduleDirty.events + marks[uid]))
        new = [{"instance_uid": u, "marked_at": now, "events": marks[u]} for u in uids if u not in existing]
        if new:
            s.execute(insert(ScheduleDirty), new)
        self.marked += len(marks)


def follow(store: Store, ladok: Ladok, *, max_pages: int = 500, **kw: Any) -> dict[str, Any]:
    f = ScheduleFeed(store, ladok, max_pages=max_pages, **kw)
    done = f.follow()
    return {"pages": done.pages, "events": done.events, "marked": f.marked, "page": done.page,
            "caught_up": done.caught_up, "gaps": done.gaps, "skipped_pages": done.skipped_pages,
            "scrubbed_batches": f.scrubbed}
