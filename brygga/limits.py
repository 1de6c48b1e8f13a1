"""Bounding values for the store's bounded columns: one rule for every place that names a record
with a value it was sent (quarantine, audit, checkpoints)."""

from __future__ import annotations

import hashlib


def bounded(value: str, limit: int) -> str:
    """``value`` if it fits ``limit`` characters; else its head, "…" and a digest of the whole, so
    two different long values never become the same short one (a name or a position marker, never
    an id to act on)."""
    if len(value) <= limit:
        return value
    digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return f"{value[:max(limit - 18, 0)]}…~{digest}"[:limit]
