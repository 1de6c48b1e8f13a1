"""The scheduling system's objects and its import rules.

Objects are kept by (type, extId). An upsert has PATCH semantics: the fields given replace those
fields, the others stay; ``active: false`` deactivates. Each object is checked on its own and
answered on its own (a 207 Multi-Status): required fields per type, references to objects that
must exist, field sizes. A delete of an object still in use (a course instance or student group
that has members or bookings, a student who is a member) is refused with 409: the sender
deactivates it instead. Requests carry an ``Idempotency-Key``; the same key is answered from the
replay store, never applied twice.
"""

from __future__ import annotations

import threading
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from typing import Any

TYPES = ("utbildningstillfalle", "studentgrupp", "student", "medlemskap")
REQUIRED = {
    "utbildningstillfalle": ("typ", "kod", "namn_sv", "start", "slut"),
    "studentgrupp": ("namn", "tillfalle"),
    "student": (),
    "medlemskap": ("grupp", "student", "roll"),
}
REFERENCES = {  # field -> the types it may name
    "tillfalle": ("utbildningstillfalle",),
    "grupp": ("studentgrupp",),
    "student": ("student",),
}
ROLES = ("antagen", "registrerad")
MAX_EXT_ID = 128
MAX_TEXT = 255
REPLAY_KEPT = 10_000


class ObjectError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


@dataclass
class Obj:
    type: str
    ext_id: str
    fields: dict[str, Any] = field(default_factory=dict)
    active: bool = True
    bookings: int = 0  # reservations in the schedule: the object may not be deleted
    version: int = 1


class ScheduleState:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.objects: dict[tuple[str, str], Obj] = {}
            self.members: Counter[tuple[str, str]] = Counter()  # (type, extId) referenced by medlemskap/grupp
            self.replay: OrderedDict[str, tuple[int, dict[str, Any]]] = OrderedDict()
            self.stats: Counter[str] = Counter()
            self.record_bodies = False
            self.bodies: list[bytes] = []  # what was received, when record_bodies (tests)
            self.lis: dict[str, dict[str, Any]] = {}  # LIS records by sourcedId

    # ------------------------------------------------------------------ rules
    def _check(self, o: dict[str, Any], merged: dict[str, Any], objects: dict[tuple[str, str], Obj]) -> None:
        typ, ext = o.get("type"), o.get("extId")
        if typ not in TYPES:
            raise ObjectError(422, f"okänd objekttyp {typ!r}")
        if not isinstance(ext, str) or not 1 <= len(ext) <= MAX_EXT_ID:
            raise ObjectError(422, f"extId saknas eller är längre än {MAX_EXT_ID} tecken")
        if typ == "utbildningstillfalle" and merged.get("typ") not in ("kurs", "program"):
            raise ObjectError(422, "typ ska vara kurs eller program")
        for name in REQUIRED[typ]:
            if merged.get(name) in (None, ""):
                raise ObjectError(422, f"obligatoriskt fält {name} saknas för {typ}")
        for name, value in merged.items():
            if isinstance(value, str) and len(value) > MAX_TEXT:
                raise ObjectError(422, f"fältet {name} är längre än {MAX_TEXT} tecken")
            if name in REFERENCES and value not in (None, ""):
                if not any((t, value) in objects for t in REFERENCES[name]):
                    raise ObjectError(422, f"fältet {name} pekar på {value}, som inte finns")
        if typ == "medlemskap" and merged.get("roll") not in ROLES:
            raise ObjectError(422, f"roll ska vara en av {', '.join(ROLES)}")
        if typ == "student" and merged.get("skyddad") is True and any(merged.get(n) for n in ("fornamn", "efternamn", "epost")):
            raise ObjectError(422, "en student med skyddade personuppgifter får inte ha namn eller e-post")
        if typ == "student" and merged.get("epost") and "@" not in merged["epost"]:
            raise ObjectError(422, "epost är inte en e-postadress")

    @staticmethod
    def _refs(fields: dict[str, Any], objects: dict[tuple[str, str], Obj]) -> list[tuple[str, str]]:
        out = []
        for name, types in REFERENCES.items():
            value = fields.get(name)
            if value:
                out += [(t, value) for t in types if (t, value) in objects][:1]
        return out

    def _one(self, o: dict[str, Any], objects: dict[tuple[str, str], Obj],
             members: Counter[tuple[str, str]]) -> tuple[int, str]:
        """Apply one object to ``objects``/``members`` (the state, or a scratch copy for
        validate). An Obj is replaced, never changed in place, so a scratch copy is a dict copy."""
        typ, ext = o.get("type"), o.get("extId")
        key = (typ, ext)
        if o.get("operation") == "delete":
            existing = objects.get(key)  # type: ignore[arg-type]
            if existing is None:
                return 404, "finns inte"
            if members[key] or existing.bookings:  # type: ignore[index]
                raise ObjectError(409, "objektet används (medlemmar eller bokningar) och kan inte tas bort; inaktivera det")
            del objects[key]  # type: ignore[arg-type]
            for ref in self._refs(existing.fields, objects):
                members[ref] -= 1
            return 200, "borttaget"
        fields = o.get("fields") or {}
        if not isinstance(fields, dict):
            raise ObjectError(422, "fields ska vara ett objekt")
        existing = objects.get(key)  # type: ignore[arg-type]
        merged = {**(existing.fields if existing else {}), **fields}
        self._check(o, merged, objects)
        active = bool(o.get("active", existing.active if existing else True))
        if existing is not None and existing.fields == merged and existing.active == active:
            return 200, "oförändrat"
        if existing is not None:
            for ref in self._refs(existing.fields, objects):
                members[ref] -= 1
        objects[key] = Obj(typ, ext, merged, active, existing.bookings if existing else 0,  # type: ignore[arg-type,index]
                           existing.version + 1 if existing else 1)
        for ref in self._refs(merged, objects):
            members[ref] += 1
        return (201, "skapat") if existing is None else (200, "uppdaterat")

    # ------------------------------------------------------------------ operations
    def upsert(self, objects: list[dict[str, Any]], *, key: str | None, apply: bool = True) -> tuple[int, dict[str, Any]]:
        """Apply (or, ``apply=False``, validate on a scratch copy: later objects of the request
        see the earlier ones, nothing is kept) and answer per object."""
        with self.lock:
            if key and apply and key in self.replay:
                self.stats["replayed"] += 1
                return self.replay[key]
            state, members = (self.objects, self.members) if apply else (dict(self.objects), Counter(self.members))
            results = []
            for o in objects:
                ref = {"type": o.get("type") if isinstance(o, dict) else None,
                       "extId": o.get("extId") if isinstance(o, dict) else None}
                try:
                    if not isinstance(o, dict):
                        raise ObjectError(422, "objektet ska vara ett JSON-objekt")
                    status, message = self._one(o, state, members)
                except ObjectError as e:
                    status, message = e.status, e.message
                results.append({**ref, "status": status, "message": message})
                self.stats[f"{'applied' if apply else 'validated'}.{status}"] += 1
            answer = (207, {"results": results})
            if key and apply:
                self.replay[key] = answer
                while len(self.replay) > REPLAY_KEPT:
                    self.replay.popitem(last=False)
                self.stats["requests"] += 1
            return answer

    def list(self, typ: str | None, page: int, limit: int) -> tuple[int, list[Obj]]:
        with self.lock:
            hits = [o for o in self.objects.values() if typ is None or o.type == typ]
        start = (page - 1) * limit
        return len(hits), hits[start:start + limit]

    def book(self, typ: str, ext_id: str, n: int = 1) -> Obj:
        """Control: bookings (room reservations) on an object; an object with bookings is in use."""
        with self.lock:
            o = self.objects[(typ, ext_id)]
            self.objects[(typ, ext_id)] = o = Obj(o.type, o.ext_id, o.fields, o.active, o.bookings + n, o.version)
            return o
