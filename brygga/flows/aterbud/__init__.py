"""Återbud reconciliation NyA ↔ Ladok, with återbudsärenden for staff. See docs/flows/aterbud.md.

Three steps, each safe to repeat and to kill at any point (the DAG ``brygga_aterbud`` runs them
every minute), and the staff actions on cases:

* ``nya_to_ladok`` (``from_nya.py``): every open round's återbud from NyA applied in Ladok on the
  tillfällesantagning the admission import placed (``ExterntSystem=NyA``), or an återbudsärende when
  Ladok refuses (``registered`` — suggested avbrott, early within 3 weeks of study start —,
  ``already_aterbud``, ``avbrott_exists``); a pending or unhandled admission is declined, never placed.
* ``ladok_to_nya`` and ``send_pending`` (``to_nya.py``): återbud entered in Ladok, followed in the
  feed, one ``ReportAterbud`` item per NyA admission through the outbox.
* ``cases.py``: apply the suggested action, close with a note; ``settings.py``: whether återbud are
  taken from NyA and whether students may enter them themselves.

No loops: an återbud NyA already knows, or that came from NyA, is never reported to NyA;
``Origin=ladok`` återbud in ``GetAterbud`` are never applied to Ladok. The rules: ``rules.py``.
"""

from typing import Any

from brygga.flows.aterbud.cases import CaseError, apply_case, close_case
from brygga.flows.aterbud.from_nya import _decide, nya_to_ladok
from brygga.flows.aterbud.rules import (
    ACTOR,
    DESTINATION,
    EARLY_AVBROTT_DAYS,
    EXTERNT_SYSTEM,
    KIND,
    LADOK_CHECKPOINT,
    LADOK_SOURCE,
    NYA_SOURCE,
    checkpoint_name,
    idempotency_key,
    suggested_action,
)
from brygga.flows.aterbud.settings import (
    SETTING_ACCEPT_FROM_NYA,
    SETTING_STUDENTS_MAY_ENTER,
    SETTINGS_DEFAULTS,
    set_settings,
    settings,
)
from brygga.flows.aterbud.to_nya import ladok_to_nya, pending_count, send_pending
from brygga.flows.ports import Ladok, Nya
from brygga.states import ACTION_TEXT as ACTIONS
from brygga.states import CAUSE_TEXT as CAUSES
from brygga.store import Store


def sync(store: Store, nya: Nya, ladok: Ladok, **kw: Any) -> dict[str, Any]:
    """Both directions and the send, once (CLI and tests)."""
    a = nya_to_ladok(store, nya, ladok)
    b = ladok_to_nya(store, ladok)
    c = send_pending(store, nya)
    return {"nya_to_ladok": a, "ladok_to_nya": b, "send": c}


__all__ = [
    "ACTIONS", "ACTOR", "CAUSES", "DESTINATION", "EARLY_AVBROTT_DAYS", "EXTERNT_SYSTEM", "KIND", "LADOK_CHECKPOINT",
    "LADOK_SOURCE", "NYA_SOURCE", "SETTINGS_DEFAULTS", "SETTING_ACCEPT_FROM_NYA", "SETTING_STUDENTS_MAY_ENTER",
    "CaseError", "_decide", "apply_case", "checkpoint_name", "close_case", "idempotency_key",
    "ladok_to_nya", "nya_to_ladok", "pending_count", "send_pending", "set_settings", "settings",
    "suggested_action", "sync",
]
