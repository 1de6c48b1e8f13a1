"""The peers Brygga talks to and their settings: each Airflow Connection's extra parsed once, here,
into a typed object that refuses what it does not know.

Airflow-free and store-free (importing an adapter loads neither SQLAlchemy nor Airflow). In Airflow,
task code reads the Connections (``brygga.dagkit.peer``); credentials live only there. Every
setting a flow or an adapter uses is a field below, with its default; a key that is not (a typo,
a setting of another peer) fails with the Connection's name and the keys it may hold, instead of
being ignored.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar


@dataclass(frozen=True)
class Peer:
    name: str
    conn_id: str
    default_port: int
    description: str


PEERS: dict[str, Peer] = {
    p.name: p
    for p in (
        Peer("ladok", "brygga_ladok", 8701, "Ladok REST API and Atom feed (simulator by default)"),
        Peer("nya", "brygga_nya", 8702, "NyA SOAP service (simulator by default)"),
        Peer("folkbokforing", "brygga_folkbokforing", 8703, "Population register lookup (simulator by default)"),
        Peer("schema", "brygga_schema", 8704, "Scheduling system (schemaläggning)"),
        Peer("arkiv", "brygga_arkiv", 8705, "Digital archive (e-arkiv), E-ARK SIP delivery"),
    )
}
STORE_CONN_ID = "brygga_store"


class SettingsError(ValueError):
    """A Connection's extra holds a key Brygga does not know, or a value of the wrong kind."""


def _str_tuple(v: Any) -> tuple[str, ...]:
    if isinstance(v, (list, tuple)):
        return tuple(str(x).strip() for x in v if str(x).strip())
    return tuple(x.strip() for x in str(v).split(",") if x.strip())


def _pair(v: Any) -> tuple[str, str]:
    t = _str_tuple(v)
    if len(t) != 2:
        raise ValueError("a [name, organisationsnummer] pair")
    return t[0], t[1]


def _verify(v: Any) -> bool | str:
    if isinstance(v, bool):
        return v
    if isinstance(v, str) and v.lower() in ("true", "false"):
        return v.lower() == "true"
    return str(v)


def _mappings(v: Any) -> dict[str, int]:
    if not isinstance(v, Mapping):
        raise ValueError("an object of message -> version")
    return {str(k): int(x) for k, x in v.items()}


def _float(v: Any) -> float:
    return float(v)


def _share(v: Any) -> float:
    x = float(v)
    if not 0 < x <= 1:
        raise ValueError("a share above 0 and at most 1 (0.1 = 10 %)")
    return x


def _str_map(v: Any) -> dict[str, str]:
    if not isinstance(v, Mapping):
        raise ValueError("an object of name -> name")
    return {str(k): str(x) for k, x in v.items()}


def _choice(*allowed: str) -> Callable[[Any], str]:
    def convert(v: Any) -> str:
        if str(v) not in allowed:
            raise ValueError(f"one of {', '.join(allowed)}")
        return str(v)

    return convert


def _int(v: Any) -> int:
    if isinstance(v, float) and not v.is_integer():
        raise ValueError("a whole number")
    return int(v)


def _opt_str(v: Any) -> str | None:
    return None if v is None else str(v)


#: How a value from the extra's JSON becomes the field's type (a field not named here is a str).
_CONVERT: dict[str, Callable[[Any], Any]] = {
    **dict.fromkeys(("timeout", "stream_timeout", "upload_timeout", "rate_per_second", "beside_wait"), _float),
    **dict.fromkeys(("concurrency", "closing_days", "max_part_bytes", "rate_burst", "removal_guard_count", "batch"),
                    _int),
    "removal_guard_share": _share, "organizations": _str_map,
    "format": _choice("timeedit", "timeedit-file", "lis", "oneroster"), "transport": _choice("amqp", "http"),
    "environment": _choice("produktion", "integrationstest", "test", "lokal"),
    "verify": _verify, "mappings": _mappings, "terms": _str_tuple,
    "archival_creator": _pair, "submitter": _pair,
}


@dataclass(frozen=True)
class HttpSettings:
    """What every peer's Connection may set: transport, TLS, deadlines, the mapping versions."""

    scheme: str | None = None  # http | https (default: https for conn_type https)
    verify: bool | str = True  # False, or a CA bundle's path
    cert: str | None = None  # the client certificate (PEM) and its key
    key: str | None = None
    crl: str | None = None  # a PEM file of revoked certificates the peer's certificate is checked against
    #: Seconds an exchange may take (retries included); a streamed reply must start within it and
    #: may not stall longer.
    timeout: float = 30.0
    #: Seconds a streamed reply (a bulk answer read while it arrives) may take in all; None: what
    #: fits the flow that reads it (``STREAM_DEADLINES``), else ``STREAM_DEFAULT``.
    stream_timeout: float | None = None
    #: HTTP(S) proxy URL; None: libcurl takes ``http_proxy``/``HTTPS_PROXY`` from the environment,
    #: "": no proxy even if the environment names one.
    proxy: str | None = None
    no_proxy: str | None = None  # hosts reached without the proxy (comma-separated); None: the environment's
    mappings: dict[str, int] | None = None  # message -> mapping version (default: the lowest registered)
    #: Requests a second to this peer from one worker host (a token bucket shared by its tasks),
    #: bursts of ``rate_burst``; None: no limit (go_ladok takes 1/s, bursts of 30, against Ladok).
    rate_per_second: float | None = None
    rate_burst: int | None = None
    #: The environment this Connection is meant for (produktion, integrationstest, test, lokal);
    #: None: Ladok's is read from its client certificate, a plain-http peer (a simulator) is lokal.
    #: Brygga refuses to pair a production peer with a test one (``certificates.pairing``).
    environment: str | None = None

    @property
    def client_cert(self) -> tuple[str, str] | None:
        return (self.cert, self.key) if self.cert and self.key else None


@dataclass(frozen=True)
class LadokSettings(HttpSettings):
    #: Concurrent GETs of a bulk read (the offer export's collect); 1 = one request at a time.
    concurrency: int = 8
    #: Where the Atom feed is: ``{base}{feed_path}/{recent|first|N}``. Production and
    #: integrationstest serve it at /uppfoljning/feed (the public reference page, KTH's fixtures,
    #: go_ladok); go_ladok uses /handelser/feed only for an Int-test-API certificate.
    feed_path: str = "/uppfoljning/feed"


@dataclass(frozen=True)
class ScheduleSettings(HttpSettings):
    format: str = "timeedit"  # timeedit | timeedit-file | lis | oneroster
    terms: tuple[str, ...] = ()  # the terms exported by default (HT2027, ...)
    organisation: str | None = None  # only this organisation unit's instances, if set
    directory: str | None = None  # where OneRoster packages and TimeEdit import files are written
    batch: int | None = None  # objects per request, file or package (None: the format's: 500, OneRoster 10,000)
    #: TimeEdit REST: the organisation id the API key (the Connection's password) belongs to, and
    #: its region (X-Region): the key is exchanged for a token at
    #: /v1/organizations/{organization_id}/api-keys/authenticate.
    organization_id: str | None = None
    region: str = "EU_EES"
    #: TimeEdit scopes access by organisation: Ladok organisationsenhet -> TimeEdit organization
    #: (an object of a unit not named gets ``default_organization``, as do students).
    organizations: dict[str, str] | None = None
    default_organization: str | None = None
    #: LIS: the Ladok-LIS adapter's way (``amqp``: one message per record on ``address``, an AMQP
    #: 1.0 node of the broker at the Connection's host) or Brygga's HTTP form (``http``).
    transport: str = "amqp"
    address: str = "/amq/queue/ladok-lis"
    #: A full run that would end more than this share of its scope's objects, or more than
    #: ``removal_guard_count`` objects, is held for an operator's approval.
    removal_guard_share: float = 0.10
    removal_guard_count: int | None = None
    #: How long the sender beside a run waits for that run's plan to begin (seconds).
    beside_wait: float = 60.0


@dataclass(frozen=True)
class ArchiveSettings(HttpSettings):
    archival_creator: tuple[str, str] | None = None  # (name, organisationsnummer)
    submitter: tuple[str, str] | None = None
    submission_agreement: str | None = None
    closing_days: int | None = None  # after a study period's end, before its instance is archived
    max_part_bytes: int | None = None  # the largest part of a package
    upload_timeout: float | None = None  # a package's upload deadline (default: max(600, timeout))
    degrees_from: str | None = None  # the first day of the degree period archived by default


S = TypeVar("S", bound=HttpSettings)

SETTINGS: dict[str, type[HttpSettings]] = {
    "ladok": LadokSettings, "nya": HttpSettings, "folkbokforing": HttpSettings, "schema": ScheduleSettings,
    "arkiv": ArchiveSettings,
}


def parse_settings(peer: str, extra: Mapping[str, Any] | None) -> HttpSettings:
    """The peer's typed settings from its Connection's extra; unknown keys and unusable values are
    refused with the Connection's name."""
    cls = SETTINGS.get(peer, HttpSettings)
    names = {f.name for f in dataclasses.fields(cls)}
    extra = dict(extra or {})
    conn = PEERS[peer].conn_id if peer in PEERS else peer
    unknown = sorted(set(extra) - names)
    if unknown:
        raise SettingsError(f"Connection {conn}: unknown extra key(s) {', '.join(unknown)}; "
                            f"it may hold: {', '.join(sorted(names))}")
    values: dict[str, Any] = {}
    for k, v in extra.items():
        if v is None:
            continue
        try:
            convert: Callable[[Any], Any] = _CONVERT.get(k) or _opt_str
            values[k] = convert(v)
        except (TypeError, ValueError) as e:
            raise SettingsError(f"Connection {conn}: extra {k}={v!r} is not usable: {e}") from None
    return cls(**values)


@dataclass(frozen=True)
class PeerConfig:
    """What an adapter needs to reach its peer; built from an Airflow Connection or defaults.

    ``extra`` is the Connection's extra as given; it is parsed once into ``settings`` (typed, unknown
    keys refused) when the config is made, and nothing reads it raw."""

    name: str
    base_url: str
    login: str | None = None
    password: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
    #: The streamed-reply deadline when the Connection sets none (the flow's: ``STREAM_DEADLINES``).
    stream_default: float = field(default=900.0, compare=False)
    settings: HttpSettings = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "settings", parse_settings(self.name, self.extra))

    def with_extra(self, **changes: Any) -> PeerConfig:
        """The same peer with some settings changed (e.g. a short timeout for a probe)."""
        return dataclasses.replace(self, extra={**self.extra, **changes})

    @property
    def verify(self) -> bool | str:
        return self.settings.verify

    @property
    def client_cert(self) -> tuple[str, str] | None:
        return self.settings.client_cert

    @property
    def timeout(self) -> float:
        return self.settings.timeout

    @property
    def stream_timeout(self) -> float:
        s = self.settings.stream_timeout
        return self.stream_default if s is None else s

    @property
    def proxy(self) -> str | None:
        return self.settings.proxy

    @property
    def no_proxy(self) -> str | None:
        return self.settings.no_proxy

    @property
    def crl(self) -> str | None:
        return self.settings.crl

    @property
    def mappings(self) -> dict[str, int] | None:
        return self.settings.mappings


#: A streamed reply's deadline (seconds) when the Connection sets no ``stream_timeout``: what fits
#: the interval of the flow that reads it, so a peer that trickles its reply never holds a run past
#: the next one's start (the merit sync every 30 s, återbud every minute, the admission import and
#: the schedule export every 5 minutes); manual and monthly flows keep ``STREAM_DEFAULT``.
STREAM_DEFAULT = 900.0
STREAM_DEADLINES: dict[str, float] = {
    "brygga_merit_sync": 60.0, "brygga_merit_snapshot": 60.0, "brygga_aterbud": 60.0,
    "brygga_admission_import": 240.0, "brygga_schedule_export": 240.0, "brygga_healthcheck": 60.0,
}


def settings_as(peer: PeerConfig, cls: type[S]) -> S:
    """The peer's settings as the kind an adapter or flow needs (the Ladok settings of a Ladok peer)."""
    s = peer.settings
    if not isinstance(s, cls):
        raise SettingsError(f"peer {peer.name!r} has {type(s).__name__}, not {cls.__name__}")
    return s


def from_connection(name: str, *, conn_type: str | None, host: str | None, port: int | None,
                    schema: str | None, login: str | None, password: str | None,
                    extra: Mapping[str, Any]) -> PeerConfig:
    """A peer's config from the fields of its Airflow Connection (the one place extras are read)."""
    settings = parse_settings(name, extra)
    scheme = settings.scheme or ("https" if conn_type == "https" else "http")
    base = f"{scheme}://{host}" + (f":{port}" if port else "")
    if schema:
        base += "/" + schema.strip("/")
    return PeerConfig(name, base, login or None, password or None, dict(extra))


#: What the simulators take beside their address (``make run``'s Connections): the scheduling
#: simulator's TimeEdit API key, the organisation it belongs to and the default organization.
SIMULATOR_SECRETS: dict[str, str] = {"schema": "sim-api-key"}
SIMULATOR_EXTRA: dict[str, dict[str, Any]] = {
    "schema": {"organization_id": "brygga-sim", "default_organization": "brygga"},
}


def default_peer(name: str, host: str = "127.0.0.1") -> PeerConfig:
    p = PEERS[name]
    return PeerConfig(name, f"http://{host}:{p.default_port}", password=SIMULATOR_SECRETS.get(name),
                      extra=dict(SIMULATOR_EXTRA.get(name, {})))
