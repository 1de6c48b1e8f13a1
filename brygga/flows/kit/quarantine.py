"""What a flow does with a NyA reply it cannot read (not well-formed, a DTD, another operation's
reply): the records read before the break are kept and the round's checkpoint moves to just
after the last good one; the reply is quarantined with its position, how far it was read and the
parser's message (one row per position, every run that meets it counted); the task fails, so
Airflow alerts and retries. A reply never moves its checkpoint past what could not be read: when
NyA has corrected it, the next run reads on; an operator moves past it with
``brygga checkpoints set <checkpoint> <sequence>`` (audited)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from adapters.http import UnreadableReply
from brygga.logmask import get_logger
from brygga.store import ops

log = get_logger("brygga.flows")


def quarantine_reply(s: Session, e: UnreadableReply, *, checkpoint: str, resume: int, kept: int) -> None:
    """Quarantine an unreadable NyA reply that the checkpoint ``checkpoint`` now resumes at ``resume``."""
    reason = (f"NyA's {e.operation} reply cannot be read (from sequence {resume}): {e}. {kept} record(s) "
              f"before it were kept; {checkpoint} stands at {resume}. If NyA does not correct it, move past it "
              f"with: brygga checkpoints set {checkpoint} <sequence>")
    row = ops.quarantine_again(s, source="nya", message_id=f"{checkpoint}:{resume}", kind=f"{e.operation}-reply",
                               reason=reason)
    log.error("%s (attempt %s)", reason, row.attempts)
