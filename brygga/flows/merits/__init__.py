"""Continuous merit sync Ladok → NyA (meriter), from Ladok's Atom event feed.

Two steps, each safe to repeat and to kill at any point (the DAG runs them every 30 seconds):

* ``sync_once`` (``sync.py``) follows the feed from its checkpoint with the shared feed follower
  (``brygga.flows.kit.feed``), keeps the merit events (``rules.MERIT_TYPES``) of students who are
  applicants in an open NyA round, enriches them from Ladok REST (``lookups.py``: personnummer,
  Utbildningskod / Tillfälleskod; cached for the run) and turns them into ``Merit`` records
  (``rules.to_merit``; merit id = HandelseUID). Per batch of about ``batch_size`` events ONE
  transaction writes the outbox rows, the inbox (dedupe) rows, any quarantine/audit rows and the
  new checkpoint.
* ``send_pending`` (``send.py``) sends the due merit rows to NyA (``SubmitMerits``), one request per
  enqueue batch, with a RequestId derived from the rows' idempotency keys: a crash after NyA applied
  a request re-sends the same request, which NyA answers from its replay store. Transient failures
  back off; rejected merits and messages that keep failing are quarantined.

A feed that moved on while Brygga was away is recorded as a gap (quarantine ``feed-gap``, audit).
See docs/flows/merits.md.
"""

from brygga.flows.kit.feed import CheckpointMoved
from brygga.flows.merits.grades import GradeBook
from brygga.flows.merits.lookups import Applicants, Enricher
from brygga.flows.merits.rules import (
    ACTOR,
    CHECKPOINT,
    DESTINATION,
    FLOW,
    KIND,
    MERIT_TYPES,
    SOURCE,
    idempotency_key,
    to_merit,
)
from brygga.flows.merits.send import lag_seconds, send_pending
from brygga.flows.merits.sync import reset_checkpoint, sync_once

__all__ = [
    "ACTOR", "CHECKPOINT", "FLOW", "DESTINATION", "KIND", "MERIT_TYPES", "SOURCE", "Applicants",
    "CheckpointMoved", "Enricher", "GradeBook", "idempotency_key", "lag_seconds", "reset_checkpoint", "send_pending",
    "sync_once", "to_merit",
]
