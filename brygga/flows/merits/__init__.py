"""Merit sync Ladok → NyA (meriter): the merits Ladok already has when a student applies, then every
new one "direkt", every version once, and what Ladok takes back withdrawn.

* ``sync_once`` (``sync.py``) reads the open rounds' new applicants (``applicants.py``: NyA's
  applicant stream, remembered in ``nya_applicant``), then follows Ladok's feed from its checkpoint
  with the kit's feed follower: the merit events (``rules.MERIT_TYPES``) of applicants become
  ``Merit`` records (``rules.to_merit``; merit id = the Ladok object, ``ladok:<kind>:<uid>``), the
  retraction events (``rules.RETRACTIONS``) withdraw theirs. Per batch ONE transaction writes the
  ledger (``ledger.py``, ``nya_merit``: what was queued, in which version, whether NyA holds it),
  the outbox and inbox rows, quarantine and audit rows and the new checkpoint.
* ``snapshot.take`` (``snapshot.py``, DAG ``brygga_merit_snapshot``) reads, for each new applicant,
  the merits Ladok already has through its REST resources, into the same ledger: a merit the feed
  also delivers is sent once.
* ``send_pending`` (``send.py``) sends the outbox: live merits and withdrawals first, the
  snapshot's between them within a time budget; one request per enqueue batch with a RequestId NyA
  replays after a crash; a version that is stale when its turn comes is cancelled, not sent.

A feed that moved on while Brygga was away is recorded as a gap (quarantine ``feed-gap``, audit).
See docs/flows/merits.md.
"""

from brygga.flows.kit.feed import CheckpointMoved
from brygga.flows.merits import applicants, ledger, repairs, snapshot
from brygga.flows.merits.applicants import Applicants
from brygga.flows.merits.grades import GradeBook
from brygga.flows.merits.lookups import Enricher
from brygga.flows.merits.rules import (
    ACTOR,
    CHECKPOINT,
    DESTINATION,
    FLOW,
    KIND,
    MERIT_TYPES,
    RETRACTIONS,
    SNAPSHOT_KIND,
    SOURCE,
    WITHDRAW_KIND,
    idempotency_key,
    merit_ref,
    to_merit,
)
from brygga.flows.merits.send import lag_seconds, send_pending
from brygga.flows.merits.sync import reset_checkpoint, sync_once

__all__ = [
    "ACTOR", "CHECKPOINT", "FLOW", "DESTINATION", "KIND", "MERIT_TYPES", "RETRACTIONS", "SNAPSHOT_KIND", "SOURCE",
    "WITHDRAW_KIND", "Applicants", "CheckpointMoved", "Enricher", "GradeBook", "applicants", "idempotency_key",
    "lag_seconds", "ledger", "merit_ref", "repairs", "reset_checkpoint", "send_pending", "snapshot", "sync_once", "to_merit",
]
