"""Jinja2 for the console: the templates in ``templates/``, autoescaped, with filters for local
time (Europe/Stockholm, with its offset) and the Swedish texts of Brygga's codes. The rendered page
goes through ``brygga.personnummer.mask`` as a last guard: no page carries a personnummer in clear."""

from __future__ import annotations

import datetime as dt
import json
import urllib.parse
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, select_autoescape

from brygga.certificates import LEVEL_TEXT
from brygga.personnummer import mask
from brygga.states import ACTION_TEXT, CAUSE_TEXT, DRIFT_TEXT, HINDER_TEXT

LOCAL = ZoneInfo("Europe/Stockholm")
HERE = Path(__file__).parent

STATUS_TEXT = {
    # unhandled admissions
    "open": "öppen", "resolved": "löst", "manual": "hanterad manuellt",
    # cases
    "closed": "avslutat",
    # admissions in the store
    "pending": "väntar", "placed": "placerad", "unhandled": "ej hanterad", "handled": "hanterad",
    "declined": "återbud", "invalid": "ogiltig",
    # outbox and publications
    "sent": "skickad", "failed": "försöker igen", "dead": "gett upp", "running": "pågår", "done": "klar",
    "cancelled": "behövdes inte skickas",
    # drift (the reconciliation)
    "repaired": "rättad", "dismissed": "lämnad", "gone": "borta",
    "partial": "delvis", "planned": "planerad", "rejected": "avvisad",
    # Airflow run states
    "success": "lyckades", "queued": "köad",
}
PUBLICATION_ACTION_TEXT = {"new": "Nytt", "changed": "Ändrat", "withdrawn": "Återkallat", "invalid": "Ogiltigt",
                           "unchanged": "Oförändrat"}
FIELD_TEXT = {  # an offer's fields (brygga.records.Offer) and an admission's (brygga.records.Admission)
    "utbildningskod": "Utbildningskod", "tillfalleskod": "Tillfälleskod", "name_sv": "Namn", "name_en": "Namn (engelska)",
    "credits": "Högskolepoäng", "start": "Startdatum", "end": "Slutdatum", "studietakt": "Studietakt (%)",
    "studieort": "Studieort", "places": "Platser", "programme_code": "Programkod", "package_id": "Programtillfälle",
    "admission_id": "Antagning (NyA)", "sequence": "Löpnummer i NyA", "round": "Antagningsomgång",
    "personnummer": "Personnummer", "offer_id": "Erbjudande (NyA)", "programme_internal": "Anmälan inom program",
    "admitted": "Antagen", "accepted": "Har tackat ja", "fee_liable": "Avgiftsskyldig",
    "application_fee_paid": "Anmälningsavgift betald", "conditions": "Behörighetsvillkor",
    "aterbud_date": "Återbud (datum)",
}
AUDIT_ACTION_TEXT = {
    "admission.retry": "Omprövning", "admission.handled": "Markerad som hanterad",
    "admission.unhandled": "Till ej hanterade", "aterbud_case.apply": "Föreslagen åtgärd utförd",
    "aterbud_case.close": "Ärende avslutat", "quarantine.release": "Karantän avfärdad",
    "quarantine.retry": "Karantän försökt igen", "publication.start": "Publicering startad",
    "publication.finish": "Publicering klar",
    "publication.refused": "Publicering stoppad: planen hade ändrats", "checkpoint.set": "Kontrollpunkt flyttad",
    "console.bulk_retry": "Massomprövning startad", "console.publish": "Publicering beställd",
}


def to_local(v: Any) -> Any:
    """A stored time (aware, naive UTC, or an ISO string) as an aware Stockholm time; anything else
    (a date, text that is no time) as it is."""
    if isinstance(v, str):
        try:
            v = dt.datetime.fromisoformat(v)
        except ValueError:
            return v
    if isinstance(v, dt.datetime):
        return (v if v.tzinfo else v.replace(tzinfo=dt.UTC)).astimezone(LOCAL)
    return v


def local_time(v: Any, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
    """A stored time as Stockholm time with its offset, for a page."""
    if v in (None, ""):
        return "–"
    t = to_local(v)
    if isinstance(t, dt.datetime):
        off = t.strftime("%z")
        return f"{t.strftime(fmt)} {off[:3]}:{off[3:]}"
    if isinstance(t, dt.date):
        return t.isoformat()
    return str(t)


def _query(params: dict[str, Any], **changes: Any) -> str:
    merged = {**params, **changes}
    return urllib.parse.urlencode({k: v for k, v in merged.items() if v not in (None, "", False)})


def _value(v: Any) -> str:
    """A value as officers read it: ja/nej, – for nothing, lists and mappings spelled out."""
    if v is True:
        return "ja"
    if v is False:
        return "nej"
    if v in (None, "", [], {}):
        return "–"
    if isinstance(v, dict):
        return detail_text(v)
    if isinstance(v, list):
        return "; ".join(_value(x) for x in v)
    return str(v)


def detail_text(d: Any) -> str:
    if not d:
        return ""
    if isinstance(d, dict):
        return ", ".join(f"{k}: {v if not isinstance(v, (dict, list)) else json.dumps(v, ensure_ascii=False)}"
                         for k, v in d.items() if v not in (None, "", [], {}))
    return str(d)


def environment() -> Environment:
    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"]),
                      trim_blocks=True, lstrip_blocks=True)
    texts = {
        "hinder_text": lambda c: HINDER_TEXT.get(c, c),
        "cause_text": lambda c: CAUSE_TEXT.get(c, c),
        "action_text": lambda c: ACTION_TEXT.get(c, c),
        "status_text": lambda c: STATUS_TEXT.get(c, c),
        "status_text_all": lambda c: "alla" if c == "all" else STATUS_TEXT.get(c, c),
        "item_action_text": lambda c: PUBLICATION_ACTION_TEXT.get(c, c),
        "audit_action_text": lambda c: AUDIT_ACTION_TEXT.get(c, c),
        "level_text": lambda c: LEVEL_TEXT.get(c, c),
        "field_text": lambda c: FIELD_TEXT.get(c, c),
        "drift_text": lambda c: DRIFT_TEXT.get(c, c),
    }
    env.filters.update(local=local_time, detail=detail_text, value=_value, **texts)
    env.globals.update(query=_query, **texts)
    return env


_ENV: Environment | None = None


def render(name: str, **context: Any) -> str:
    global _ENV
    if _ENV is None:
        _ENV = environment()
    return mask(_ENV.get_template(name).render(**context))
