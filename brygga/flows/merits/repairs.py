"""What an operator does with a merit the reconciliation found NyA holding otherwise than Ladok:
send it again (NyA lacks it, or holds another version), or withdraw it (Ladok took it back and NyA
still holds it). Through the ledger and the outbox like every merit; audited."""

from __future__ import annotations

from typing import Any

from brygga.flows.merits import ledger
from brygga.store import Store, ops


def send_again(store: Store, refs: list[str], *, actor: str, why: str) -> dict[str, Any]:
    with store.transaction() as s:
        counts = ledger.resend(s, refs, correlation=f"merits:repair:{refs[0] if refs else ''}")
        for ref in refs:
            ops.audit(s, actor, "merit.send_again", "nya_merit", ref, why=why)
    return dict(counts)


def withdraw(store: Store, refs: list[str], *, actor: str, why: str) -> dict[str, Any]:
    with store.transaction() as s:
        counts = ledger.retract(s, refs, correlation=f"merit-withdrawals:repair:{refs[0] if refs else ''}",
                                reason="taken back in Ladok", held_in_nya=True)
        for ref in refs:
            ops.audit(s, actor, "merit.withdraw", "nya_merit", ref, why=why)
    return dict(counts)
