"""Hinder: why an admission could not be placed, in Brygga's codes (the queue's categories), the
text operators read (Ladok's wording), what they are advised to do, and which Ladok hinder key
means which. Pure."""

from __future__ import annotations

from brygga.states import HINDER_ADVICE, HINDER_TEXT, Hinder

#: Our hinder codes and the text operators see (``brygga.states.HINDER_TEXT``).
HINDER: dict[str, str] = HINDER_TEXT

#: Ladok's hinder key (I18nNyckel) -> our hinder code.
LADOK_HINDER: dict[str, Hinder] = {
    "studiedeltagande.hinder.flera.kurspaketeringar": Hinder.KUNDE_INTE_PLACERAS_I_PLAN,
    "studiedeltagande.hinder.kurspaketering.saknas": Hinder.KUNDE_INTE_PLACERAS_I_PLAN,
    "studiedeltagande.hinder.ej.ingaende.i.kurspaketering": Hinder.KUNDE_INTE_PLACERAS_I_PLAN,
    "studiedeltagande.hinder.redan.paborjat": Hinder.REDAN_PABORJAT,
    "studiedeltagande.hinder.utbildningstillfalle.installt": Hinder.UTBILDNINGSTILLFALLE_INSTALLT,
    "studiedeltagande.hinder.antagning.finns": Hinder.ANTAGNING_FINNS,
    "studiedeltagande.hinder.anmalningsnummer.konflikt": Hinder.ANMALNINGSNUMMER_KONFLIKT,
    "utbildningstillfalle.hittades.ej": Hinder.UTBILDNINGSTILLFALLE_SAKNAS,
    "kurspaketeringstillfalle.hittades.ej": Hinder.KUNDE_INTE_PLACERAS_I_PLAN,
    "studentinformation.hinder.personnummer.ogiltigt": Hinder.PERSONNUMMER_OGILTIGT,
}

#: What an operator is advised to do, per hinder (``brygga.states.HINDER_ADVICE``).
ADVICE: dict[str, str] = HINDER_ADVICE


def of_ladok(key: str) -> Hinder:
    """Our hinder code for a Ladok hinder key (anything unknown is ``ovrigt``)."""
    return LADOK_HINDER.get(key, Hinder.OVRIGT)


def reason(code: str, detail: str | None = None) -> str:
    """The reason operators read: the hinder's text, and what Ladok or NyA said."""
    return f"{HINDER[code]}: {detail}" if detail else HINDER[code]
