"""Population register (folkbokföring) simulator, loosely modelled on a Navet-style person lookup.

``GET /folkbokforing/person/{personnummer}`` and ``POST /folkbokforing/personer`` answer XML in
the namespace ``urn:brygga:folkbokforing:1`` (``schemas/folkbokforing/folkbokforing-1.xsd``);
``/sim/...`` is the JSON control surface tests and demos use. See docs/contracts/folkbokforing.md.
"""

from simulators.folkbokforing.app import create_app
from simulators.folkbokforing.state import FolkbokforingState, PersonRecord

__all__ = ["create_app", "FolkbokforingState", "PersonRecord"]
