"""The nightly NyA↔Ladok reconciliation (avstämning): per open round, NyA's transferred
admissions against Ladok's tillfällesantagningar (missing, in another package), återbud on one side
only, villkor that differ, and the applicants' merits NyA lacks or holds otherwise than Ladok.

It reads both peers through their gateways only and changes nothing in them: what it finds becomes
``drift`` rows (one open row per kind and subject; a row a later run no longer finds is ``gone``),
each with the action that repairs it, which an operator takes from the console (the flows' own
functions: place again, ompröva, an återbudsärende, report the återbud, align the villkor, send the
merit again, withdraw it). A dry run lists what it found and what each action would do, writing
nothing. See docs/flows/reconciliation.md."""

from brygga.flows.reconciliation.compare import Found
from brygga.flows.reconciliation.run import FLOW, reconcile

__all__ = ["FLOW", "Found", "reconcile"]
