"""Scheduling-system simulator (schemaläggningssystem), modelled on TimeEdit's REST import.

``POST /api/v1/objects/upsert`` (PATCH semantics, 207 Multi-Status per object),
``POST /api/v1/objects/validate`` (the dry run), ``GET /api/v1/objects`` (what it holds, for
reconciliation), and ``POST /lis/v1/records`` for IMS LIS record documents. ``/sim/...`` is the
JSON control surface. See docs/contracts/schema.md.
"""

from simulators.schema.app import create_app
from simulators.schema.state import ScheduleState

__all__ = ["create_app", "ScheduleState"]
