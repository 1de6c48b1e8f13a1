"""Certificates and when they expire: each Connection's client certificate (the PEM file its
``extra.cert`` names) and each peer's TLS server certificate, with warnings at 90 / 30 / 7 days.
The console shows them; the ``brygga_healthcheck`` DAG fails at 7 days (:func:`check`), so
Airflow's own alerting fires a week before a certificate stops a flow."""

from __future__ import annotations

import dataclasses
import datetime as dt
import socket
import ssl
import urllib.parse
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from cryptography import x509

from brygga.config import PeerConfig
from brygga.health import Unhealthy

WARN_DAYS = (90, 30, 7)
FAIL_DAYS = 7
LEVEL_TEXT = {"expired": "Har gått ut", "7": "Går ut inom 7 dagar", "30": "Går ut inom 30 dagar",
              "90": "Går ut inom 90 dagar", "ok": "Giltigt"}


def level(days_left: int) -> str:
    """The tightest warning a certificate with ``days_left`` is within."""
    if days_left < 0:
        return "expired"
    for days in sorted(WARN_DAYS):
        if days_left <= days:
            return str(days)
    return "ok"


def describe(cert: x509.Certificate, *, peer: str, kind: str, now: dt.datetime) -> dict[str, Any]:
    not_after = cert.not_valid_after_utc
    days_left = (not_after - now).days  # floor: 6 days 23 hours is 6
    return {"peer": peer, "kind": kind, "subject": cert.subject.rfc4514_string(),
            "issuer": cert.issuer.rfc4514_string(), "not_after": not_after.isoformat(), "days_left": days_left,
            "level": level(days_left)}


def _client(peer: PeerConfig, now: dt.datetime) -> dict[str, Any] | None:
    path = peer.settings.cert
    if not path:
        return None
    try:
        with open(path, "rb") as f:
            cert = x509.load_pem_x509_certificate(f.read())
    except (OSError, ValueError) as e:
        return {"peer": peer.name, "kind": "client", "path": path, "level": None,
                "error": f"klientcertifikatet {path} kan inte läsas: {e}"}
    return {**describe(cert, peer=peer.name, kind="client", now=now), "path": path}


def _server(peer: PeerConfig, now: dt.datetime, timeout: float) -> dict[str, Any]:
    url = urllib.parse.urlsplit(peer.base_url)
    if url.scheme != "https":
        return {"peer": peer.name, "kind": "server", "level": None, "note": f"{url.scheme}: ingen TLS"}
    host, port = url.hostname or "", url.port or 443
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE  # read it, whoever signed it
    if peer.client_cert:
        try:
            ctx.load_cert_chain(*peer.client_cert)
        except (OSError, ssl.SSLError):
            pass  # the client certificate's own row says what is wrong with it
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock, \
                ctx.wrap_socket(sock, server_hostname=host) as tls:
            der = tls.getpeercert(binary_form=True)
    except (OSError, ssl.SSLError) as e:
        return {"peer": peer.name, "kind": "server", "level": None,
                "error": f"servercertifikatet kunde inte hämtas från {host}:{port}: {e}"}
    if not der:
        return {"peer": peer.name, "kind": "server", "level": None, "error": f"{host}:{port} visade inget certifikat"}
    return describe(x509.load_der_x509_certificate(der), peer=peer.name, kind="server", now=now)


def inspect(peers: Iterable[PeerConfig], *, now: dt.datetime | None = None, timeout: float = 5.0,
            fetch_server: bool = True) -> list[dict[str, Any]]:
    """Every peer's client certificate (if its Connection has one) and server certificate (https
    peers; asked concurrently, each within ``timeout``), as JSON-able dicts."""
    now = now or dt.datetime.now(dt.UTC)
    peers = list(peers)
    out: list[dict[str, Any]] = [c for c in (_client(p, now) for p in peers) if c is not None]
    if fetch_server and peers:
        with ThreadPoolExecutor(max_workers=min(len(peers), 8)) as pool:
            out += list(pool.map(lambda p: _server(p, now, timeout), peers))
    return sorted(out, key=lambda c: (c["peer"], c["kind"]))


def check(peers: Iterable[PeerConfig], *, now: dt.datetime | None = None, timeout: float = 5.0,
          fetch_server: bool = True) -> list[dict[str, Any]]:
    """:func:`inspect`, failing (``Unhealthy``) when a certificate expires within ``FAIL_DAYS``
    or has expired, or a configured client certificate cannot be read. A server that cannot be
    reached does not fail this check (``peer_reachable`` does)."""
    certs = inspect(peers, now=now, timeout=timeout, fetch_server=fetch_server)
    bad = [c for c in certs if c.get("level") in ("expired", str(FAIL_DAYS))
           or (c["kind"] == "client" and c.get("error"))]
    if bad:
        raise Unhealthy("certificates: " + "; ".join(_problem(c) for c in bad))
    return certs


def _problem(c: dict[str, Any]) -> str:
    what = f"{c['peer']} {c['kind']} certificate"
    if c.get("error"):
        return f"{what}: {c['error']}"
    if c["level"] == "expired":
        return f"{what} {c['subject']} expired {c['not_after']} ({-c['days_left']} days ago)"
    return f"{what} {c['subject']} expires {c['not_after']} ({c['days_left']} days left)"


# -- the Ladok certificate: which environment, and what it may do -----------------------------------

#: The client certificate's second OU names the Ladok environment it is for (go_ladok reads the
#: environment from it: Prod-API, Int-test-API, Test-API).
ENVIRONMENTS = {"prod-api": "produktion", "int-test-api": "integrationstest", "test-api": "test"}


def ladok_environment(peer: PeerConfig) -> str:
    """produktion / integrationstest / test as the Connection says (``environment``) or its client
    certificate's second OU does; ``lokal`` for a plain-http Ladok (the simulator), else ``okänd``."""
    configured = peer.settings.environment
    if configured:
        return str(configured)
    path = peer.settings.cert
    if path:
        try:
            with open(path, "rb") as f:
                cert = x509.load_pem_x509_certificate(f.read())
        except (OSError, ValueError):
            return "okänd"
        units = [a.value for a in cert.subject.get_attributes_for_oid(x509.NameOID.ORGANIZATIONAL_UNIT_NAME)]
        for unit in units[1:2] + units:  # the second OU first, as go_ladok reads it
            env = ENVIRONMENTS.get(str(unit).strip().lower())
            if env:
                return env
        return "okänd"
    return "lokal" if peer.base_url.startswith("http://") else "okänd"


def ladok_access(peer: PeerConfig) -> dict[str, Any]:
    """Who the Ladok client certificate is (the authenticated probe, ``anvandare/autentiserad``),
    in which environment, and per flow the read rights (system activities) it needs, has and
    lacks (``anvandarbehorighet/egna`` and its profiles); the writing rights no public source
    names an id for are listed to confirm by hand. Peer failures propagate."""
    from adapters.ladok import LadokAdapter
    from brygga import rights

    user = LadokAdapter(peer).user(rights=True)
    flows = [{"flow": f.flow, "ok": f.ok, "needs": [rights.name(a) for a in f.needs],
              "missing": [rights.name(a) for a in f.missing], "writes": list(f.writes)}
             for f in rights.check(user.activities)]
    return {"peer": peer.name, "environment": ladok_environment(peer), "user": user.username, "uid": user.uid,
            "profiles": [{"uid": u, "name": n, "status": s} for u, n, s in user.profiles],
            "flows": flows, "ok": all(f["ok"] for f in flows)}


def check_ladok_access(peer: PeerConfig) -> dict[str, Any]:
    """:func:`ladok_access`, failing (``Unhealthy``) when a flow lacks a right it reads with."""
    access = ladok_access(peer)
    lacking = [f"{f['flow']}: {', '.join(f['missing'])}" for f in access["flows"] if not f["ok"]]
    if lacking:
        raise Unhealthy(f"the Ladok certificate ({access['user']}, {access['environment']}) lacks rights: "
                        + "; ".join(lacking))
    return access


# -- environments: which one Brygga runs against, and no production peer paired with a test one --

PRODUCTION = "produktion"
UNKNOWN = "okänd"


def peer_environment(peer: PeerConfig) -> str:
    """A peer's environment: Ladok's as ``ladok_environment`` reads it; another's as its
    Connection says (``environment``), ``lokal`` for plain http (a simulator), else ``okänd``."""
    if peer.name == "ladok":
        return ladok_environment(peer)
    configured = peer.settings.environment
    if configured:
        return str(configured)
    return "lokal" if peer.base_url.startswith("http://") else UNKNOWN


@dataclasses.dataclass(frozen=True)
class Pairing:
    """The peers' environments, the profile they make (produktion, integrationstest, test, lokal;
    ``blandad`` when they differ, ``okänd`` when none is known) and, for a production peer paired
    with a test or local one, why Brygga refuses to run (``refused``)."""

    environments: dict[str, str]
    profile: str
    refused: str | None = None


NAMES = {"ladok": "Ladok", "nya": "NyA", "folkbokforing": "folkbokföringen", "schema": "schemaläggningen",
         "arkiv": "e-arkivet"}


def pairing(environments: dict[str, str]) -> Pairing:
    """What the peers' environments make together. Production with anything known not to be
    production is refused (a production NyA with a test Ladok, or the reverse); an unknown
    environment is shown, not refused."""
    known = {k: v for k, v in environments.items() if v != UNKNOWN}
    kinds = set(known.values())
    profile = kinds.pop() if len(kinds) == 1 else ("blandad" if kinds else UNKNOWN)
    production = sorted(k for k, v in known.items() if v == PRODUCTION)
    other = sorted(k for k, v in known.items() if v != PRODUCTION)
    refused = None
    if production and other:
        refused = (f"{', '.join(NAMES.get(k, k) for k in production)} är produktion men "
                   + ", ".join(f"{NAMES.get(k, k)} är {known[k]}" for k in other)
                   + ": Brygga kör inte mot en blandning av produktion och test. Rätta Connections "
                     "(extra.environment, värd eller certifikat).")
    return Pairing(dict(environments), profile, refused)
