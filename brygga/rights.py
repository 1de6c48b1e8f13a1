"""The Ladok rights (system activities, ``ki:Systemaktivitet`` ids) each flow needs, and what a
certificate has that the flows lack: the rights self-check of ``brygga_healthcheck`` and the
console's certificates page.

The ids and keys are from masv3971/go_ladok v0.0.78 (``ladok_methods.go`` ``PermissionID``, the
profile eduid_ladok asks for) and a real integrationstest profile in its mocks; Ladok publishes no
list. Writing rights (placing an admission, återbud, avbrott, villkor, establishing a student)
have no public id: they are shown as "to confirm" and never reported missing.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Systemaktivitet id -> its I18nNyckel (the ids Brygga's flows read with).
SYSTEMAKTIVITETER: dict[int, str] = {
    1008: "systemaktivitet.examen.allt.las",
    11004: "systemaktivitet.kataloginformation.las",
    31001: "systemaktivitet.resultat.las",
    51001: "systemaktivitet.studiedeltagande.las",
    51066: "systemaktivitet.studiedeltagande.las.studiebehorigheter",
    51067: "systemaktivitet.studiedeltagande.las.tillfallesantagningar",
    61001: "systemaktivitet.studentinformation.lasa",
    71001: "systemaktivitet.utbildningsinformation.allman.las",
    90019: "systemaktivitet.uppfoljning.feeds",
}

#: What each flow reads with (ids), and what it writes (no public id: to confirm).
FLOW_RIGHTS: dict[str, tuple[tuple[int, ...], tuple[str, ...]]] = {
    "brygga_offer_export": ((11004, 71001), ()),
    "brygga_merit_sync": ((90019, 61001, 51001, 31001, 71001, 1008, 11004), ()),
    "brygga_admission_import": ((61001, 51001, 51066, 51067, 71001, 11004),
                                ("etablera student", "tillfällesantagning", "behörighetsvillkor")),
    "brygga_aterbud": ((90019, 61001, 51001, 51067, 71001), ("återbud", "avbrott")),
    "brygga_schedule_export": ((90019, 61001, 51001, 71001, 11004), ()),
    "brygga_archive_export": ((61001, 51001, 31001, 71001, 1008), ()),
}


@dataclass(frozen=True)
class FlowRights:
    flow: str
    needs: tuple[int, ...]
    missing: tuple[int, ...]
    writes: tuple[str, ...]  # writing rights with no public id: to confirm by hand

    @property
    def ok(self) -> bool:
        return not self.missing


def check(has: dict[int, str] | set[int]) -> list[FlowRights]:
    """For each flow, the read rights it needs that the certificate's active profiles lack."""
    granted = set(has)
    return [FlowRights(flow, needs, tuple(r for r in needs if r not in granted), writes)
            for flow, (needs, writes) in FLOW_RIGHTS.items()]


def name(aid: int) -> str:
    return SYSTEMAKTIVITETER.get(aid, f"systemaktivitet {aid}").removeprefix("systemaktivitet.")
