"""AMQP 1.0 for the adapters (Apache Qpid Proton): records sent one message each to a node of a
broker (RabbitMQ with its AMQP 1.0 plugin, Azure Service Bus, ActiveMQ …), each waited for until
the broker settles it, as the Ladok-LIS adapter delivers LIS records.

``send`` opens one connection per call, sends every message as the link's credit allows and
returns one outcome per message: ``accepted``, or ``rejected`` / ``released`` / ``modified`` with
the broker's reason. Messages are durable; a message the broker accepted is its business. A
connection that cannot be made, or one lost before every message was settled, is a transient
``PeerError``: the caller sends the batch again, and a consumer may see a record twice (as from the
real adapter, whose consumers must be idempotent).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from proton import Message, SSLDomain
from proton.handlers import MessagingHandler
from proton.reactor import Container

from adapters.http import PeerError


@dataclasses.dataclass(frozen=True)
class Record:
    """One message: its body, id and application properties (the headers consumers filter on)."""

    body: bytes
    message_id: str
    properties: dict[str, str]
    content_type: str = "application/xml"


class _Sender(MessagingHandler):
    def __init__(self, url: str, address: str, records: list[Record], *, user: str | None, password: str | None,
                 timeout: float, ssl: SSLDomain | None):
        super().__init__(auto_settle=True)
        self.url, self.address, self.records = url, address, records
        self.user, self.password, self.timeout, self.ssl = user, password, timeout, ssl
        self.sent = 0
        self.outcomes: dict[int, tuple[str, str | None]] = {}
        self.tags: dict[Any, int] = {}
        self.error: str | None = None
        self.timer: Any = None

    def on_start(self, event: Any) -> None:
        kw: dict[str, Any] = {"allowed_mechs": "PLAIN" if self.user else "ANONYMOUS"}
        if self.user:
            kw.update(user=self.user, password=self.password or "")
        if self.ssl is not None:
            kw["ssl_domain"] = self.ssl
        conn = event.container.connect(self.url, reconnect=False, **kw)
        event.container.create_sender(conn, self.address)
        self.timer = event.container.schedule(self.timeout, self)

    def on_timer_task(self, event: Any) -> None:  # the deadline: whatever is unsettled is not known to be there
        self.error = self.error or f"no settlement within {self.timeout:g} s"
        event.container.stop()

    def on_sendable(self, event: Any) -> None:
        while event.sender.credit and self.sent < len(self.records):
            r = self.records[self.sent]
            m = Message(body=r.body, id=r.message_id, durable=True, content_type=r.content_type,
                        properties=r.properties)
            m.inferred = True  # the body as a data section, as bytes are
            self.tags[event.sender.send(m).tag] = self.sent
            self.sent += 1

    def _settled(self, event: Any, outcome: str, reason: str | None = None) -> None:
        i = self.tags.get(event.delivery.tag)
        if i is not None:
            self.outcomes[i] = (outcome, reason)
        if len(self.outcomes) == len(self.records):
            self.timer.cancel()
            event.connection.close()

    def on_accepted(self, event: Any) -> None:
        self._settled(event, "accepted")

    def on_rejected(self, event: Any) -> None:
        cond = event.delivery.remote.condition
        self._settled(event, "rejected", f"{cond.name}: {cond.description}" if cond else None)

    def on_released(self, event: Any) -> None:
        self._settled(event, "released", "the broker released the message (not delivered)")

    def on_modified(self, event: Any) -> None:
        self._settled(event, "modified", "the broker returned the message modified (not delivered)")

    def _failed(self, event: Any, what: str, cond: Any) -> None:
        self.error = f"{what}: {cond.name}: {cond.description}" if cond else what
        if self.timer is not None:
            self.timer.cancel()
        event.container.stop()

    def on_transport_error(self, event: Any) -> None:
        self._failed(event, "the connection failed", event.transport.condition)

    def on_connection_error(self, event: Any) -> None:
        self._failed(event, "the broker closed the connection", event.connection.remote_condition)

    def on_link_error(self, event: Any) -> None:
        self._failed(event, f"the broker refused the link to {self.address}", event.link.remote_condition)


def send(url: str, address: str, records: list[Record], *, user: str | None = None, password: str | None = None,
         timeout: float = 30.0, ca: str | None = None, peer: str = "schema") -> list[tuple[str, str | None]]:
    """Send ``records`` to ``address`` at the broker ``url`` (amqp:// or amqps://); one outcome per
    record, in order. Raises a transient PeerError when the broker could not be reached or did not
    settle every message in ``timeout`` seconds."""
    if not records:
        return []
    ssl = None
    if url.startswith("amqps://"):
        ssl = SSLDomain(SSLDomain.MODE_CLIENT)
        if ca:
            ssl.set_trusted_ca_db(ca)
        ssl.set_peer_authentication(SSLDomain.VERIFY_PEER_NAME)
    h = _Sender(url, address, records, user=user, password=password, timeout=timeout, ssl=ssl)
    Container(h).run()
    if len(h.outcomes) < len(records):
        raise PeerError(peer, f"AMQP {address}: {h.error or 'the connection closed'} "
                        f"({len(h.outcomes)} of {len(records)} messages settled)", transient=True)
    return [h.outcomes[i] for i in range(len(records))]
