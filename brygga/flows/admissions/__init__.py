"""Admission import (antagning) NyA → Ladok, the unhandled-admission queue and behörighetsvillkor.

Three steps, each safe to repeat and to kill at any point:

* ``fetch`` (``fetching.py``): a round's admitted-and-accepted admissions from NyA into
  ``nya_admission``, with the round's checkpoint;
* ``place`` (``placing.py``): pending admissions into the students' study plans in Ladok
  (establishing new students from the population register); what cannot be placed becomes an
  *ej hanterad antagning* (``queue.py``) with its hinder (``hinder.py``);
* ``sync_conditions`` (``conditions.py``): NyA's villkor changes applied to placed admissions.

Operators list and count the queue, ompröva an admission (``retry``) with a chosen package or as
free-standing, or mark it handled by hand (``review.py``); each action is audited.
"""

from brygga.flows.admissions import fetching, placing, resolving
from brygga.flows.admissions.conditions import sync_conditions
from brygga.flows.admissions.fetching import CHUNK, fetch, rounds_to_import
from brygga.flows.admissions.hinder import ADVICE, HINDER, LADOK_HINDER
from brygga.flows.admissions.placing import WORKERS, outcome, place
from brygga.flows.admissions.queue import rounds_with_pending, summary
from brygga.flows.admissions.resolving import LOOKUP_BATCH, Catalogue
from brygga.flows.admissions.review import mark_handled, retry
from brygga.flows.admissions.rules import ACTOR, FLOW, checkpoint_name, conditions_checkpoint
from brygga.flows.admissions.work import Work

__all__ = [
    "fetching", "placing", "resolving", "ACTOR", "FLOW", "ADVICE", "CHUNK", "HINDER", "LADOK_HINDER", "LOOKUP_BATCH", "WORKERS", "Catalogue", "Work",
    "checkpoint_name", "conditions_checkpoint", "fetch", "mark_handled",
    "outcome", "place", "retry", "rounds_to_import", "rounds_with_pending", "summary", "sync_conditions",
]
