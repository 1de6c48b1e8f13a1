"""Archive simulator (e-arkiv): receives E-ARK SIP 2.1 packages (FGS Paketstruktur 2.0), checks
every checksum itself, validates the data files against the package's XSDs, runs eark-validator
(own virtualenv) and answers with a receipt (kvittens). See docs/contracts/arkiv.md.
"""

from simulators.arkiv.app import create_app
from simulators.arkiv.state import ArchiveState

__all__ = ["create_app", "ArchiveState"]
