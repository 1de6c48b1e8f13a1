"""The kit every flow is built from: a new flow declares its identity and fills in hooks.

| part | what it does | module |
|---|---|---|
| ``Flow`` | a flow's identity: name, DAG, actor, checkpoints, outbox destination and kinds, sources | ``flow.py`` |
| ``FeedFollower`` | Ladok's Atom feed from a checkpoint: batches, gaps, unreadable pages, effects + checkpoint in one transaction | ``feed.py`` (pages: ``feed_pages.py``) |
| ``SequenceFollower`` | one of NyA's per-round streams from a checkpoint by sequence, chunk by chunk | ``sequence.py`` |
| ``OutboxSender`` | the outbox to a peer, one request per group with a RequestId of its keys; ``settle`` per record | ``outbox.py`` |
| ``quarantine_reply`` / ``unreadable`` | a reply that cannot be read, quarantined by peer and operation | ``quarantine.py`` |

Checkpoints themselves (where a follower stands) are rows of ``feed_checkpoint`` (``brygga.store.ops``);
operators move them with ``brygga.flows.checkpoints`` (audited).
"""

from brygga.flows.kit.feed import Batch, CheckpointMoved, FeedFollower, Followed
from brygga.flows.kit.flow import Flow, NotConfigured
from brygga.flows.kit.outbox import OutboxSender, request_id, settle
from brygga.flows.kit.quarantine import quarantine_reply, unreadable
from brygga.flows.kit.sequence import Progress, SequenceFollower

__all__ = ["Batch", "CheckpointMoved", "FeedFollower", "Flow", "Followed", "NotConfigured", "OutboxSender",
           "Progress", "SequenceFollower", "quarantine_reply", "request_id", "settle", "unreadable"]
