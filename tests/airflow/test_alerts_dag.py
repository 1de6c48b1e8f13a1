"""Alerts end to end (issue 32 §1): brygga_alerts under dag.test(), the SMTP provider's notifier,
a real SMTP server (aiosmtpd) started by the test. The message arrives once per episode, its
opening and its end, and carries no personnummer in clear."""

from __future__ import annotations

import email
import json
import re

import pytest

from tests.airflow.conftest import load_dag

pytestmark = pytest.mark.airflow


@pytest.fixture
def smtp_server():
    from aiosmtpd.controller import Controller

    class Inbox:
        def __init__(self):
            self.messages: list[email.message.Message] = []

        async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
            msg = email.message_from_bytes(envelope.original_content)
            msg["X-Envelope-To"] = ", ".join(envelope.rcpt_tos)
            self.messages.append(msg)
            return "250 OK"

    import socket

    with socket.socket() as probe:  # a free port (aiosmtpd's readiness check cannot use port 0)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


def _subject(msg) -> str:
    from email.header import decode_header, make_header

    return str(make_header(decode_header(msg["Subject"])))


def _body(msg) -> str:
    parts = [p for p in msg.walk() if p.get_content_type() == "text/html"]
    return parts[0].get_payload(decode=True).decode() if parts else ""


def test_an_alert_arrives_once_when_it_opens_and_once_when_it_ends(airflow_db, airflow_connections, dag_store,
                                                                   smtp_server, monkeypatch):
    from sqlalchemy import select

    from brygga.flows import alerts
    from brygga.store import ops
    from brygga.store.models import Quarantine

    inbox, port = smtp_server
    airflow_connections(dag_store.url, {})
    monkeypatch.setenv("AIRFLOW_CONN_BRYGGA_SMTP", json.dumps({
        "conn_type": "smtp", "host": "127.0.0.1", "port": port, "login": "", "password": "",
        "extra": {"from_email": "brygga@uni.example", "disable_tls": True, "disable_ssl": True, "timeout": 10}}))
    alerts.subscribe(dag_store, "quarantine", ["drift@uni.example"], threshold=1, actor="anna")
    with dag_store.transaction() as s:  # two rows in quarantine, one naming a student
        for n, reason in enumerate(("Ogiltigt personnummer 19900101-1234 i antagningen", "Trasig sida")):
            ops.quarantine(s, source="nya", message_id=f"m{n}", kind="admission", reason=reason)

    for _ in range(2):  # two runs in the episode: one message
        assert load_dag("brygga_alerts").test().state == "success"
    assert len(inbox.messages) == 1
    msg = inbox.messages[0]
    assert msg["X-Envelope-To"] == "drift@uni.example" and msg["From"] == "brygga@uni.example"
    assert "Karantän: 2" in _subject(msg) and msg["Message-ID"].startswith("<alert:")
    assert "öppna rader i karantänen" in _body(msg)

    with dag_store.transaction() as s:  # an operator releases them
        for q in s.scalars(select(Quarantine)):
            q.released_at = q.created_at
    assert load_dag("brygga_alerts").test().state == "success"
    assert load_dag("brygga_alerts").test().state == "success"
    assert len(inbox.messages) == 2 and "Över: Karantän" in _subject(inbox.messages[1])
    for m in inbox.messages:  # no personnummer in clear, in what the receiver reads
        text = _subject(m) + _body(m)
        assert not re.search(r"\d{6,8}-?\d{4}", text) and "19900101" not in m.as_string()


@pytest.fixture
def webhook_server():
    """A Teams/Slack-style incoming webhook on loopback: records each POST's path, headers and body."""
    import http.server
    import threading

    posts: list[tuple[str, dict, dict]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's hook name
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            posts.append((self.path, dict(self.headers), json.loads(body)))
            self.send_response(200)
            self.send_header("Content-Length", "1")
            self.end_headers()
            self.wfile.write(b"1")

        def log_message(self, *a):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield posts, server.server_address[1]
    finally:
        server.shutdown()


def test_an_alert_reaches_a_webhook_through_the_http_provider_once(airflow_db, airflow_connections, dag_store,
                                                                   smtp_server, webhook_server, monkeypatch):
    from brygga.flows import alerts
    from brygga.store import ops

    inbox, port = smtp_server
    posts, hook_port = webhook_server
    airflow_connections(dag_store.url, {})
    monkeypatch.setenv("AIRFLOW_CONN_BRYGGA_SMTP", json.dumps({
        "conn_type": "smtp", "host": "127.0.0.1", "port": port, "login": "", "password": "",
        "extra": {"from_email": "brygga@uni.example", "disable_tls": True, "disable_ssl": True, "timeout": 10}}))
    monkeypatch.setenv("AIRFLOW_CONN_BRYGGA_TEAMS", json.dumps({  # the whole URL, as Teams hands it out
        "conn_type": "http", "host": f"http://127.0.0.1:{hook_port}/webhookb2/abc@def/IncomingWebhook/123"}))
    alerts.subscribe(dag_store, "quarantine", ["webhook:brygga_teams"], threshold=0, actor="anna")
    with dag_store.transaction() as s:
        ops.quarantine(s, source="nya", message_id="m1", kind="admission",
                       reason="Ogiltigt personnummer 19900101-1234 i antagningen")
    for _ in range(2):
        assert load_dag("brygga_alerts").test().state == "success"
    assert len(posts) == 1 and not inbox.messages  # a webhook subscription sends no mail
    path, headers, body = posts[0]
    assert path == "/webhookb2/abc@def/IncomingWebhook/123" and headers["Idempotency-Key"].startswith("alert:")
    assert "Karantän: 1" in body["text"] and "öppna rader i karantänen" in body["text"]
    assert not re.search(r"\d{6,8}-?\d{4}", json.dumps(body, ensure_ascii=False))


def test_a_units_digest_arrives_by_mail_after_an_aterbud_freed_a_place(airflow_db, airflow_connections, dag_store,
                                                                       smtp_server, monkeypatch):
    """brygga_aterbud applies NyA's återbud in the Ladok simulator; brygga_digest asks Ladok for the
    instance's organisation unit and queues the unit's digest; brygga_alerts mails it, once."""
    import datetime as dt

    from brygga.flows import alerts
    from tests.flows.test_aterbud import World

    inbox, port = smtp_server
    w = World(dag_store)
    try:
        airflow_connections(dag_store.url, {"ladok": w.ladok_url, "nya": w.nya_url})
        monkeypatch.setenv("AIRFLOW_CONN_BRYGGA_SMTP", json.dumps({
            "conn_type": "smtp", "host": "127.0.0.1", "port": port, "login": "", "password": "",
            "extra": {"from_email": "brygga@uni.example", "disable_tls": True, "disable_ssl": True, "timeout": 10}}))
        course = w.courses[0]
        unit = course.organisationsenhet
        other = next(c for c in w.courses if c.organisationsenhet != unit).organisationsenhet
        alerts.subscribe(dag_store, "digest", ["studadm@uni.example"], organisation=unit, actor="anna")
        alerts.subscribe(dag_store, "digest", ["annan@uni.example"], organisation=other, actor="anna")
        _, admission_id, _ = w.admit(course)
        w.nya_aterbud(admission_id, dt.date(2027, 8, 10))
        assert load_dag("brygga_aterbud").test().state == "success"
        for dag_id in ("brygga_digest", "brygga_alerts", "brygga_digest", "brygga_alerts"):
            assert load_dag(dag_id).test().state == "success"
        assert [m["X-Envelope-To"] for m in inbox.messages] == ["studadm@uni.example"]  # once; the other unit: none
        msg = inbox.messages[0]
        assert f"Sammandrag {unit}" in _subject(msg) and "Platser lediga efter återbud: 1" in _body(msg)
        assert f"{course.utbildning.kod} " in _body(msg) and "kalla reserv?" in _body(msg)
        assert not re.search(r"\d{6,8}-?\d{4}", _subject(msg) + _body(msg))
    finally:
        w.close()
