"""NyA (national admissions system) simulator: a SOAP 1.1 service with a static WSDL/XSD.

``POST /nya/soap`` answers the operations of contract ``urn:brygga:nya:1``
(``schemas/nya/nya-1.wsdl`` + ``nya-1.xsd``); ``/sim/...`` is the JSON control surface.
See docs/contracts/nya.md.
"""

from simulators.nya.app import create_app
from simulators.nya.state import NyaState, seed

__all__ = ["create_app", "NyaState", "seed"]
