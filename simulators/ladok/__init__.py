"""Ladok3 simulator: studentinformation, utbildningsinformation, studiedeltagande, resultat, the Atom feed.

REST bodies are XML in the public Ladok3 XSD types (``schemas/ladok``); ``/sim/...`` is the JSON
control surface for tests and demos. See docs/contracts/ladok.md.
"""

from simulators.ladok.app import create_app
from simulators.ladok.catalogue import seed_catalogue
from simulators.ladok.state import LadokError, LadokState, Placering

__all__ = ["create_app", "seed_catalogue", "LadokError", "LadokState", "Placering"]
