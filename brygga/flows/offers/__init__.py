"""Offer export (utbud) to NyA: what to publish for an admission round, the plan against what NyA
already has, and sending it through the outbox.

``plan.py`` holds the rules (what an offer is, which instances are offered, the diff: new /
changed / unchanged / withdrawn / invalid); ``publishing.py`` the steps of a publication — ``start``,
``collect``, ``enqueue``, ``send``, ``finish`` — each safe to repeat: a re-run sends nothing new (the
outbox key is round, kind, instance and content hash) and a crash resumes where it stopped.
"""

from brygga.flows.offers import plan, publishing
from brygga.flows.offers.plan import (
    DESTINATION,
    FLOW,
    KINDS,
    content_hash,
    idempotency_key,
    offer_dict,
    offerable,
    programme_offer_id,
    to_offer,
)
from brygga.flows.offers.publishing import (
    BATCH,
    FETCH_WORKERS,
    collect,
    enqueue,
    finish,
    plan_differences,
    publish,
    publish_conf,
    refuse,
    send,
    start,
)
from brygga.records import Offer

__all__ = [
    "BATCH", "DESTINATION", "FLOW", "FETCH_WORKERS", "KINDS", "Offer", "collect", "content_hash", "enqueue", "finish",
    "idempotency_key", "offer_dict", "offerable", "plan", "plan_differences", "programme_offer_id", "publish_conf",
    "publish", "publishing", "refuse", "send", "start",
    "to_offer",
]
