"""The scheduling system's objects and its import rules, as TimeEdit's REST API (v1) states them.

Objects are kept by (typeId, extId), their fields as TimeEdit keeps them: ``{name: [values]}``
(field ids ``<typeId>.<name>``), with ``organizations`` (TimeEdit scopes access by organisation)
and ``active``. ``importMode`` PATCH keeps the fields not named and replaces every array given
(a field's values, the organizations) whole; PUT clears what is not named. Each object is checked
on its own and answered on its own (207 Multi-Status): a known type and field ids, required fields
per type, references to objects that must exist, field sizes, organizations on a new object. The
bulk delete refuses an object still in use (a student group with members, an object with bookings,
a student who is a member) with 409: the sender deactivates it instead; an unknown one is 404.

TimeEdit documents no replay header: a request sent again is applied again, which PATCH and
delete make harmless (an unchanged object is ``oförändrat``, a deleted one 404). The API key is
exchanged for a token that expires (``token_seconds``); a request with an expired or unknown
token is 401.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from typing import Any

#: The installation's object types and their fields (TimeEdit lets each installation define its own).
FIELDS = {
    "utbildningstillfalle": ("typ", "kod", "tillfalleskod", "namn_sv", "namn_en", "omfattning", "start", "slut",
                             "studietakt", "undervisningstid", "studieort", "undervisningssprak", "organisation",
                             "period", "antal_antagna", "antal_forvantade", "antal_registrerade", "antal_aterbud",
                             "antal_avbrott", "kurstillfallen"),
    "studentgrupp": ("namn", "tillfalle"),
    "student": ("fornamn", "efternamn", "epost", "skyddad"),
    "medlemskap": ("grupp", "student", "roll"),
}
TYPES = tuple(FIELDS)
REQUIRED = {
    "utbildningstillfalle": ("typ", "kod", "namn_sv", "start", "slut"),
    "studentgrupp": ("namn", "tillfalle"),
    "student": (),
    "medlemskap": ("grupp", "student", "roll"),
}
REFERENCES = {  # field -> the type it names
    "tillfalle": "utbildningstillfalle",
    "grupp": "studentgrupp",
    "student": "student",
}
ROLES = ("antagen", "registrerad")
MAX_EXT_ID = 128
MAX_TEXT = 255
REPLAY_KEPT = 10_000
IMPORT_MODES = ("PATCH", "PUT")


class ObjectError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


@dataclass
class Obj:
    type: str
    ext_id: str
    fields: dict[str, list[str]] = field(default_factory=dict)
    active: bool = True
    organizations: tuple[str, ...] = ()
    bookings: int = 0  # reservations in the schedule: the object may not be deleted
    version: int = 1

    def value(self, name: str) -> str | None:
        v = self.fields.get(name) or []
        return v[0] if v else None

    def plain(self) -> dict[str, Any]:
        """The fields with a value: one value as itself, several as a list (tests)."""
        return {k: v[0] if len(v) == 1 else v for k, v in self.fields.items() if v}


class ScheduleState:
    def __init__(self, *, api_key: str = "sim-api-key", organization_id: str = "brygga-sim",
                 token_seconds: float = 3600.0) -> None:
        self.lock = threading.RLock()
        self.api_key, self.organization_id, self.token_seconds = api_key, organization_id, token_seconds
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.objects: dict[tuple[str, str], Obj] = {}
            self.members: Counter[tuple[str, str]] = Counter()  # (type, extId) referenced by another object
            self.tokens: dict[str, float] = {}  # token -> when it expires (monotonic)
            self.replay: OrderedDict[str, tuple[int, dict[str, Any]]] = OrderedDict()  # LIS requestId
            self.stats: Counter[str] = Counter()
            self.record_bodies = False
            self.bodies: list[bytes] = []  # what was received, when record_bodies (tests)
            self.lis: dict[str, dict[str, Any]] = {}  # LIS records by "<type>:<sourcedId>"

    # ------------------------------------------------------------------ authentication
    def authenticate(self, organization_id: str, authorization: str | None) -> str | None:
        """A token for the organisation's API key (``Api-Key <key>``), or None."""
        if organization_id != self.organization_id or authorization != f"Api-Key {self.api_key}":
            self.stats["auth.refused"] += 1
            return None
        token = secrets.token_urlsafe(24)
        with self.lock:
            now = time.monotonic()
            self.tokens = {t: exp for t, exp in self.tokens.items() if exp > now}
            self.tokens[token] = now + self.token_seconds
            self.stats["auth.tokens"] += 1
        return token

    def authorized(self, authorization: str | None) -> bool:
        if not authorization or not authorization.startswith("Bearer "):
            return False
        with self.lock:
            exp = self.tokens.get(authorization[7:])
        return exp is not None and exp > time.monotonic()

    def expire_tokens(self) -> None:
        """Control: every token expires now (the next request is 401)."""
        with self.lock:
            self.tokens.clear()

    # ------------------------------------------------------------------ rules
    @staticmethod
    def _fields(o: dict[str, Any], typ: str) -> dict[str, list[str]]:
        raw = o.get("fields", [])
        if not isinstance(raw, list) or not all(isinstance(f, dict) for f in raw):
            raise ObjectError(422, "fields ska vara en lista av {fieldId, values}")
        out: dict[str, list[str]] = {}
        for f in raw:
            fid, values = f.get("fieldId"), f.get("values")
            if not isinstance(fid, str) or not fid.startswith(typ + "."):
                raise ObjectError(422, f"fältet {fid!r} hör inte till typen {typ}")
            name = fid[len(typ) + 1:]
            if name not in FIELDS[typ]:
                raise ObjectError(422, f"okänt fält {fid}")
            if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
                raise ObjectError(422, f"{fid}: values ska vara en lista av strängar")
            out[name] = values
        return out

    def _check(self, typ: str, merged: dict[str, list[str]], objects: dict[tuple[str, str], Obj]) -> None:
        first = {k: v[0] if v else None for k, v in merged.items()}
        if typ == "utbildningstillfalle" and first.get("typ") not in ("kurs", "program"):
            raise ObjectError(422, "typ ska vara kurs eller program")
        for name in REQUIRED[typ]:
            if first.get(name) in (None, ""):
                raise ObjectError(422, f"obligatoriskt fält {typ}.{name} saknas")
        for name, values in merged.items():
            if any(len(v) > MAX_TEXT for v in values):
                raise ObjectError(422, f"fältet {typ}.{name} är längre än {MAX_TEXT} tecken")
            ref = REFERENCES.get(name)
            if ref and first.get(name) and (ref, first[name]) not in objects:
                raise ObjectError(422, f"fältet {typ}.{name} pekar på {first[name]}, som inte finns")
        if typ == "medlemskap" and first.get("roll") not in ROLES:
            raise ObjectError(422, f"roll ska vara en av {', '.join(ROLES)}")
        if typ == "student" and first.get("skyddad") == "true" and any(first.get(n) for n in ("fornamn", "efternamn", "epost")):
            raise ObjectError(422, "en student med skyddade personuppgifter får inte ha namn eller e-post")
        if typ == "student" and first.get("epost") and "@" not in (first["epost"] or ""):
            raise ObjectError(422, "epost är inte en e-postadress")

    @staticmethod
    def _refs(obj: Obj) -> list[tuple[str, str]]:
        return [(REFERENCES[n], v[0]) for n, v in obj.fields.items() if n in REFERENCES and v]

    def _upsert_one(self, o: Any, mode: str, objects: dict[tuple[str, str], Obj],
                    members: Counter[tuple[str, str]]) -> tuple[int, str]:
        """Apply one object to ``objects``/``members`` (the state, or a scratch copy for validate).
        An Obj is replaced, never changed in place, so a scratch copy is a dict copy."""
        if not isinstance(o, dict):
            raise ObjectError(422, "objektet ska vara ett JSON-objekt")
        if "operation" in o:
            raise ObjectError(422, "operation finns inte i upsert; ta bort med DELETE /v1/objects")
        typ, ext = o.get("typeId"), o.get("extId")
        if typ not in TYPES:
            raise ObjectError(422, f"okänd objekttyp {typ!r}")
        if not isinstance(ext, str) or not 1 <= len(ext) <= MAX_EXT_ID:
            raise ObjectError(422, f"extId saknas eller är längre än {MAX_EXT_ID} tecken")
        fields = self._fields(o, typ)
        existing = objects.get((typ, ext))
        orgs = o.get("organizations")
        if orgs is not None and (not isinstance(orgs, list) or not all(isinstance(x, str) and x for x in orgs)):
            raise ObjectError(422, "organizations ska vara en lista av organisationer")
        organizations = tuple(orgs) if orgs is not None else (existing.organizations if existing else ())
        if not organizations:
            raise ObjectError(422, "objektet måste tillhöra minst en organisation (organizations)")
        base = existing.fields if existing is not None and mode == "PATCH" else {}
        merged = {k: v for k, v in {**base, **fields}.items() if v}
        self._check(typ, merged, objects)
        active = bool(o.get("active", existing.active if existing else True))
        if existing is not None and (existing.fields, existing.active, existing.organizations) == (
                merged, active, organizations):
            return 200, "oförändrat"
        new = Obj(typ, ext, merged, active, organizations, existing.bookings if existing else 0,
                  existing.version + 1 if existing else 1)
        if existing is not None:
            for ref in self._refs(existing):
                members[ref] -= 1
        objects[(typ, ext)] = new
        for ref in self._refs(new):
            members[ref] += 1
        return (201, "skapat") if existing is None else (200, "uppdaterat")

    def _delete_one(self, o: Any, objects: dict[tuple[str, str], Obj], members: Counter[tuple[str, str]]) -> tuple[int, str]:
        if not isinstance(o, dict) or o.get("typeId") not in TYPES or not isinstance(o.get("extId"), str):
            raise ObjectError(422, "ett objekt att ta bort har typeId och extId")
        key = (o["typeId"], o["extId"])
        existing = objects.get(key)
        if existing is None:
            return 404, "finns inte"
        if members[key] or existing.bookings:
            raise ObjectError(409, "objektet används (medlemmar eller bokningar) och kan inte tas bort; inaktivera det")
        del objects[key]
        for ref in self._refs(existing):
            members[ref] -= 1
        return 200, "borttaget"

    # ------------------------------------------------------------------ operations
    def _each(self, objects: list[Any], one: Any, stat: str) -> dict[str, Any]:
        results = []
        for o in objects:
            ref = {"typeId": o.get("typeId") if isinstance(o, dict) else None,
                   "extId": o.get("extId") if isinstance(o, dict) else None}
            try:
                status, message = one(o)
            except ObjectError as e:
                status, message = e.status, e.message
            results.append({**ref, "status": status, "message": message})
            self.stats[f"{stat}.{status}"] += 1
            if message == "oförändrat":
                self.stats[f"{stat}.unchanged"] += 1
        return {"results": results}

    def upsert(self, objects: list[Any], mode: str, *, apply: bool = True) -> dict[str, Any]:
        """Apply (or, ``apply=False``, validate on a scratch copy: later objects of the request
        see the earlier ones, nothing is kept) and answer per object."""
        with self.lock:
            state, members = (self.objects, self.members) if apply else (dict(self.objects), Counter(self.members))
            answer = self._each(objects, lambda o: self._upsert_one(o, mode, state, members),
                                "applied" if apply else "validated")
            if apply:
                self.stats["requests"] += 1
            return answer

    def delete(self, objects: list[Any]) -> dict[str, Any]:
        with self.lock:
            answer = self._each(objects, lambda o: self._delete_one(o, self.objects, self.members), "deleted")
            self.stats["requests"] += 1
            return answer

    def find(self, typ: str | None, page: int, limit: int, ext_ids: list[str] | None = None) -> tuple[int, list[Obj]]:
        """(total, one page) of the objects of ``typ`` (those of ``ext_ids`` if given), in extId order."""
        with self.lock:
            hits = [o for o in self.objects.values() if (typ is None or o.type == typ)
                    and (ext_ids is None or o.ext_id in ext_ids)]
        hits.sort(key=lambda o: o.ext_id)
        start = (page - 1) * limit
        return len(hits), hits[start:start + limit]

    def book(self, typ: str, ext_id: str, n: int = 1) -> Obj:
        """Control: bookings (room reservations) on an object; an object with bookings is in use."""
        with self.lock:
            o = self.objects[(typ, ext_id)]
            self.objects[(typ, ext_id)] = o = Obj(o.type, o.ext_id, o.fields, o.active, o.organizations,
                                                  o.bookings + n, o.version)
            return o
