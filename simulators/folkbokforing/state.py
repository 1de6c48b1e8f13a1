"""In-memory register state: a dict keyed by the canonical 12-digit personnummer."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from brygga import personnummer as pnr_mod
from simulators import datagen


@dataclass(frozen=True)
class Adress:
    utdelningsadress: str
    postnummer: str
    postort: str


@dataclass(frozen=True)
class PersonRecord:
    personnummer: str  # canonical 12 digits
    fornamn: str
    efternamn: str
    sekretessmarkering: bool = False
    skyddad_folkbokforing: bool = False
    adress: Adress | None = None  # kept by the register but never disclosed while protected

    @property
    def skyddad(self) -> bool:
        return self.sekretessmarkering or self.skyddad_folkbokforing

    @property
    def samordningsnummer(self) -> bool:
        return int(self.personnummer[6:8]) > 60

    def to_json(self) -> dict[str, Any]:
        """Control-surface view (the XML view hides the address of protected people)."""
        return {
            "personnummer": self.personnummer,
            "fornamn": self.fornamn,
            "efternamn": self.efternamn,
            "sekretessmarkering": self.sekretessmarkering,
            "skyddad_folkbokforing": self.skyddad_folkbokforing,
            "samordningsnummer": self.samordningsnummer,
            "adress": None
            if self.adress is None
            else {
                "utdelningsadress": self.adress.utdelningsadress,
                "postnummer": self.adress.postnummer,
                "postort": self.adress.postort,
            },
        }


def record_from_datagen(p: datagen.Person) -> PersonRecord:
    # datagen has one "skyddad" flag; it is a sekretessmarkering here (the more common case).
    adress = None if p.address is None else Adress(p.address.utdelningsadress, p.address.postnummer, p.address.postort)
    return PersonRecord(p.personnummer, p.fornamn, p.efternamn, sekretessmarkering=p.skyddad, adress=adress)


class ControlError(ValueError):
    """A /sim/ request the simulator cannot apply (message is returned to the caller)."""


class FolkbokforingState:
    """Thread-safe register. ``seed``/``people`` reproduce ``datagen.people(people, seed)``."""

    def __init__(self, seed: int = 1, people: int = 1000, *, extra: Iterable[PersonRecord] = ()):
        self._lock = threading.Lock()
        self.seed = seed
        self.people = people
        self._by_pnr: dict[str, PersonRecord] = {}
        self.reset()
        for rec in extra:
            self.put(rec)

    # -- queries -------------------------------------------------------------------------
    def get(self, canonical: str) -> PersonRecord | None:
        return self._by_pnr.get(canonical)

    def __len__(self) -> int:
        return len(self._by_pnr)

    def __contains__(self, canonical: object) -> bool:
        return canonical in self._by_pnr

    def all(self) -> list[PersonRecord]:
        with self._lock:
            return list(self._by_pnr.values())

    # -- mutations -----------------------------------------------------------------------
    def reset(self, seed: int | None = None, people: int | None = None) -> None:
        if seed is not None:
            self.seed = seed
        if people is not None:
            self.people = people
        fresh = {p.personnummer: record_from_datagen(p) for p in datagen.people(self.people, self.seed)}
        with self._lock:
            self._by_pnr = fresh

    def put(self, rec: PersonRecord) -> PersonRecord:
        with self._lock:
            self._by_pnr[rec.personnummer] = rec
        return rec

    def delete(self, canonical: str) -> bool:
        with self._lock:
            return self._by_pnr.pop(canonical, None) is not None

    def upsert_json(self, data: dict[str, Any], *, path_pnr: str | None = None) -> tuple[PersonRecord, bool]:
        """Add or update a person from control JSON; returns (record, created).

        Keys: personnummer, fornamn, efternamn, sekretessmarkering, skyddad_folkbokforing,
        skyddad (alias: sets sekretessmarkering), adress {utdelningsadress, postnummer, postort}
        or null. On update, keys that are absent keep their current value.
        """
        if not isinstance(data, dict):
            raise ControlError("body must be a JSON object")
        raw = path_pnr if path_pnr is not None else data.get("personnummer")
        if path_pnr is not None and data.get("personnummer") not in (None, path_pnr):
            try:
                if pnr_mod.parse(str(data["personnummer"])).value != pnr_mod.parse(path_pnr).value:
                    raise ControlError("personnummer in body differs from the one in the path")
            except pnr_mod.InvalidPersonnummer as e:
                raise ControlError(str(e)) from None
        try:
            canonical = pnr_mod.parse(str(raw) if raw is not None else None).value  # type: ignore[arg-type]
        except pnr_mod.InvalidPersonnummer as e:
            raise ControlError(str(e)) from None

        with self._lock:
            current = self._by_pnr.get(canonical)
            created = current is None
            if created:
                for key in ("fornamn", "efternamn"):
                    if key not in data:
                        raise ControlError(f"'{key}' is required for a new person")
                current = PersonRecord(canonical, _text("fornamn", data["fornamn"]), _text("efternamn", data["efternamn"]))
            changes: dict[str, Any] = {}
            for key in ("fornamn", "efternamn"):
                if key in data:
                    changes[key] = _text(key, data[key])
            for key in ("sekretessmarkering", "skyddad_folkbokforing"):
                if key in data:
                    changes[key] = _bool(key, data[key])
            if "skyddad" in data:
                changes["sekretessmarkering"] = _bool("skyddad", data["skyddad"])
            if "adress" in data:
                changes["adress"] = _adress(data["adress"])
            rec = replace(current, **changes)
            self._by_pnr[canonical] = rec
        return rec, created


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _text(key: str, v: Any) -> str:
    if not isinstance(v, str) or not v.strip() or len(v) > 200 or _CONTROL.search(v):
        raise ControlError(f"'{key}' must be a non-empty string of at most 200 characters without control characters")
    return v.strip()


def _bool(key: str, v: Any) -> bool:
    if not isinstance(v, bool):
        raise ControlError(f"'{key}' must be true or false")
    return v


def _adress(v: Any) -> Adress | None:
    if v is None:
        return None
    if not isinstance(v, dict):
        raise ControlError("'adress' must be an object or null")
    for key in ("utdelningsadress", "postnummer", "postort"):
        if key not in v:
            raise ControlError(f"'adress' lacks '{key}'")
    postnummer = str(v["postnummer"]).replace(" ", "")
    if not (len(postnummer) == 5 and postnummer.isascii() and postnummer.isdigit() and postnummer[0] != "0"):
        raise ControlError("'adress.postnummer' must be five digits, e.g. 11122 or '111 22'")
    return Adress(_text("adress.utdelningsadress", v["utdelningsadress"]), postnummer, _text("adress.postort", v["postort"]))
