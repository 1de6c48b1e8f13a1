"""The schedule export (flow 5, first half): Ladok's instances, counts and student groups to a
scheduling system, delta and exactly once. ``model`` holds the rules (pure), ``reading`` what is
read from Ladok, ``planning`` the diff into the outbox, ``sending`` the outbox to the system,
``following`` the feed that marks instances to look at again."""

from brygga.flows.kit.flow import Flow

#: The outbox destination is one per target system: ``destination(target)``.
FLOW = Flow("schedule-export", "brygga_schedule_export", checkpoints=("schedule",), destination="schema",
            kinds=("schedule-object",), sources=("ladok",))
CHECKPOINT = FLOW.checkpoint()
ACTOR = FLOW.actor
KIND = FLOW.kinds[0]


def destination(target: str) -> str:
    return f"{FLOW.destination}:{target}"
