"""The archive's receipt (kvittens), contract v1 (``schemas/arkiv/kvittens-1.xsd``): read and
validated here, so nothing else parses the archive's XML."""

from __future__ import annotations

from brygga import xmlsafe
from brygga.records import ArchiveReceipt
from mappings.base import Mapping, MappingKey
from mappings.registry import mapping

NS = "urn:brygga:arkiv:1"
K = f"{{{NS}}}"


@mapping
class KvittensV1(Mapping):
    key = MappingKey("arkiv", "kvittens", 1)
    schema = "arkiv/kvittens-1.xsd"
    description = "Kvittens (archive receipt) -> ArchiveReceipt"

    def read(self, data: bytes) -> ArchiveReceipt:
        """The receipt; ``xmlsafe.UnreadableXML`` (a ValueError) when it is not one."""
        root = xmlsafe.fromstring(data)
        schema = self.xsd()
        if not schema.validate(root):
            err = schema.error_log.last_error
            raise xmlsafe.MalformedXML(f"not a kvittens (v1): line {err.line if err else '?'}: "
                                       f"{(err.message if err else '')[:200]}")
        return ArchiveReceipt(
            package_id=root.findtext(K + "PaketId") or "", status=root.findtext(K + "Status") or "",
            archive_id=root.findtext(K + "ArkivId"), received=root.findtext(K + "Mottaget"),
            sha256=root.findtext(K + "Sha256"),
            reasons=tuple((o.get("regel") or "", (o.text or "").strip()) for o in root.iterfind(K + "Orsak")))
