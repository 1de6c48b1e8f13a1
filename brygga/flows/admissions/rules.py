"""The admission import's identity: its name, the actor of its audit rows, its per-round
checkpoints (NyA's admissions stream and villkor stream) and the source of what it reads."""

from __future__ import annotations

from brygga.flows.kit.flow import Flow

FLOW = Flow("admission-import", "brygga_admission_import",
            checkpoints=("nya-admissions:{round}", "nya-villkor:{round}"), sources=("nya", "nya-villkor"))
ACTOR = FLOW.actor
VILLKOR_INBOX = FLOW.sources[1]  # inbox: a round's villkor changes by sequence


def checkpoint_name(round_code: str) -> str:
    """Where a round's admissions stream stands."""
    return FLOW.checkpoint(round_code)


def conditions_checkpoint(round_code: str) -> str:
    """Where a round's villkor stream stands."""
    return FLOW.checkpoint(round_code, which=1)
