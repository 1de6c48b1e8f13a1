"""A flow's identity, declared once per flow (``FLOW`` in its rules module): its name, the DAG that
runs it, who the audit log names when no user triggered it, the checkpoints it keeps, where its
outbox messages go, and the source its inbox and quarantine rows carry."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Flow:
    name: str  # "merit-sync"
    dag_id: str  # "brygga_merit_sync"
    #: the checkpoint it keeps; "{round}" in it for one per round ("nya-admissions:{round}")
    checkpoints: tuple[str, ...] = ()
    destination: str = ""  # outbox_message.destination of what it sends ("": it sends nothing)
    kinds: tuple[str, ...] = ()  # outbox_message.kind of what it sends
    sources: tuple[str, ...] = ()  # inbox_message.source / quarantine.source of what it reads

    @property
    def actor(self) -> str:
        """Who acts in the audit log when no user did (a scheduled run): ``brygga:<name>``."""
        return f"brygga:{self.name}"

    def checkpoint(self, round_code: str | None = None, *, which: int = 0) -> str:
        """The name of one of its checkpoints (of a round, for a per-round one)."""
        name = self.checkpoints[which]
        if "{round}" in name:
            if not round_code:
                raise ValueError(f"{self.name}: checkpoint {name} needs a round")
            return name.format(round=round_code)
        return name


class NotConfigured(ValueError):
    """A run cannot start because of its configuration (a form value or a Connection setting):
    no retry makes it right (the DAG fails the task at once)."""
