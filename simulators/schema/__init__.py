"""Scheduling-system simulator (schemaläggningssystem): TimeEdit's REST API v1 as Brygga uses it.

The API key exchanged for a token, ``POST /v1/objects/upsert`` (importMode PATCH/PUT in the
body, 207 Multi-Status per object), ``POST /v1/objects/validate`` (the dry run), ``DELETE
/v1/objects`` (the bulk delete), ``POST /v1/objects/find`` (what it holds, for reconciliation), and
``POST /lis/v2/records`` for Brygga's HTTP form of LIS. ``/sim/...`` is the JSON control surface.
See docs/contracts/schema.md.
"""

from simulators.schema.app import create_app
from simulators.schema.state import ScheduleState

__all__ = ["create_app", "ScheduleState"]
