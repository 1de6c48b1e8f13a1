"""Registry of mappings keyed by (system, message, version).

Mappings are found by:
- Python modules anywhere under the ``mappings`` package that decorate a class with ``@mapping``;
- XSLT stylesheets ``<system>.<message>.v<N>.xsl`` under ``mappings/``;
- installed plug-in packages listed in the ``brygga.mappings`` entry-point group (same rules).

Which version is used for a peer is configuration, not code: ``select(system, message)`` takes the
version from ``overrides`` (e.g. the peer Connection's ``extra.mappings``), then from the
environment (``BRYGGA_MAPPINGS="nya.offer=2,nya.admission=1"``), else the lowest registered
version: a newer version is opt-in, so installing one never silently changes what goes out.
So v1 and v2 can run side by side, and a university's own mapping drops in without touching flows.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import pkgutil
import threading
from pathlib import Path
from typing import Any, TypeVar

from mappings.base import Mapping, MappingError, MappingKey, XsltMapping

M = TypeVar("M", bound=type)

_lock = threading.RLock()
_mappings: dict[MappingKey, Mapping] = {}
_discovered = False


def mapping(cls: M) -> M:
    """Class decorator: register one instance of the mapping class."""
    register(cls())
    return cls


def register(m: Mapping) -> None:
    with _lock:
        existing = _mappings.get(m.key)
        if existing is not None and type(existing) is not type(m):
            raise MappingError(f"two mappings claim {m.key}: {existing!r} and {m!r}")
        _mappings[m.key] = m


def _import_package(package: str) -> None:
    pkg = importlib.import_module(package)
    for info in pkgutil.walk_packages(pkg.__path__, prefix=package + "."):
        importlib.import_module(info.name)
    for path in pkg.__path__:
        for xsl in sorted(Path(path).rglob("*.v*.xsl")):
            register(XsltMapping(xsl))


def discover() -> None:
    global _discovered
    with _lock:
        if _discovered:
            return
        _import_package("mappings")
        for ep in importlib.metadata.entry_points(group="brygga.mappings"):
            _import_package(ep.value)
        _discovered = True


def all_mappings() -> list[Mapping]:
    discover()
    return [_mappings[k] for k in sorted(_mappings)]


def versions(system: str, message: str) -> list[int]:
    discover()
    return sorted(k.version for k in _mappings if (k.system, k.message) == (system, message))


def get(system: str, message: str, version: int) -> Any:
    discover()
    try:
        return _mappings[MappingKey(system, message, int(version))]
    except KeyError:
        have = versions(system, message)
        raise MappingError(f"no mapping {system}.{message}.v{version} (available: {have or 'none'})") from None


def configured_versions(env: str | None = None) -> dict[tuple[str, str], int]:
    raw = os.environ.get("BRYGGA_MAPPINGS", "") if env is None else env
    out: dict[tuple[str, str], int] = {}
    for part in filter(None, (p.strip() for p in raw.replace(";", ",").split(","))):
        name, _, v = part.partition("=")
        system, _, message = name.strip().partition(".")
        if not (system and message and v.strip().isdigit()):
            raise MappingError(f"bad BRYGGA_MAPPINGS entry {part!r} (want system.message=N)")
        out[(system, message)] = int(v)
    return out


def select(system: str, message: str, overrides: dict[str, int] | None = None) -> Any:
    """The mapping configured for (system, message); see the module doc for the order.

    Typed ``Any``: a mapping is whatever class registered for the message (a plug-in's too), with
    that message's ``read``/``write`` methods; ``Mapping`` is only their common base."""
    if overrides and message in overrides:
        return get(system, message, overrides[message])
    configured = configured_versions().get((system, message))
    if configured is not None:
        return get(system, message, configured)
    have = versions(system, message)
    if not have:
        raise MappingError(f"no mapping registered for {system}.{message}")
    return get(system, message, have[0])
