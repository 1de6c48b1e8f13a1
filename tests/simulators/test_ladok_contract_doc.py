"""The Ladok simulator serves exactly what docs/contracts/ladok.md lists (each row with its public
source or marked "Brygga's own, to confirm"), and every resource the Ladok adapter calls is a row of
that list: nothing is served or asked that the contract does not trace."""

from __future__ import annotations

import re
from pathlib import Path

from starlette.routing import Route

from simulators.ladok import LadokState, create_app

DOC = Path(__file__).resolve().parents[2] / "docs" / "contracts" / "ladok.md"
ADAPTER = Path(__file__).resolve().parents[2] / "adapters" / "ladok.py"


def _documented() -> dict[tuple[str, str], str]:
    """(method, path) -> the row's Source cell, from the "## Resources" table."""
    text = DOC.read_text(encoding="utf-8")
    section = text.split("\n## Resources", 1)[1].split("\n## ", 1)[0]
    rows: dict[tuple[str, str], str] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 6 and cells[0] in ("GET", "POST", "PUT", "DELETE"):
            rows[(cells[0], cells[1].strip("`"))] = cells[-1]
    return rows


def _served() -> set[tuple[str, str]]:
    app = create_app(LadokState())
    out = set()
    for r in app.routes:
        if isinstance(r, Route) and not r.path.startswith("/sim/"):
            out.update((m, r.path) for m in (r.methods or ()) if m != "HEAD")
    return out


def test_the_simulator_serves_exactly_the_documented_resources():
    documented, served = set(_documented()), _served()
    assert served - documented == set(), "served by the simulator but not in docs/contracts/ladok.md"
    assert documented - served == set(), "in docs/contracts/ladok.md but not served by the simulator"


def test_every_documented_resource_names_its_source_or_says_it_is_to_be_confirmed():
    for (method, path), source in _documented().items():
        assert source and source not in ("-", "–"), f"{method} {path} has no source"


def test_every_path_the_adapter_asks_for_is_documented():
    """The adapter's literal paths (f-strings with their placeholders) match a documented template."""
    code = ADAPTER.read_text(encoding="utf-8")
    asked = set(re.findall(r'f?"(/(?:studentinformation|utbildningsinformation|studiedeltagande|resultat|examen|'
                           r'kataloginformation|uppfoljning)[^"]*)"', code))
    templates = [re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(p)) + "$") for _, p in _documented()]
    concrete = {re.sub(r"\{[^}]*\}", "x", p).split("?", 1)[0] for p in asked}
    unmatched = {p for p in concrete if not any(t.match(p) for t in templates)
                 and not any(t.match(p.rstrip("/") + "/x") for t in templates)}
    assert asked and unmatched == set()
