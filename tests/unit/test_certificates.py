"""Certificate expiry (``brygga.certificates``): client certificates from the Connections' files and
a real TLS server's certificate, with their warning levels; the health check fails at 7 days."""

from __future__ import annotations

import datetime as dt
import http.server
import ssl
import threading

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from brygga import certificates
from brygga.connections import PeerConfig
from brygga.health import Unhealthy

NOW = dt.datetime(2027, 1, 10, 12, 0, tzinfo=dt.UTC)


def _ca() -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Brygga Test CA")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(dt.datetime(2020, 1, 1, tzinfo=dt.UTC))
            .not_valid_after(dt.datetime(2100, 1, 1, tzinfo=dt.UTC))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    return key, cert


CA_KEY, CA = _ca()  # self-signed; signs every leaf below


def _cert(tmp_path, name: str, days: float, *, now: dt.datetime = NOW, units: tuple[str, ...] = ()) -> tuple[str, str]:
    """A leaf certificate for ``name`` (with organisational ``units``) signed by the test CA,
    expiring ``days`` after ``now``: (PEM path, key path)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([*(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, u) for u in units),
                         x509.NameAttribute(NameOID.COMMON_NAME, name)])
    cert = (x509.CertificateBuilder().subject_name(subject)
            .issuer_name(CA.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=30))
            .not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(CA_KEY.public_key()), critical=False)
            .sign(CA_KEY, hashes.SHA256()))
    cert_path, key_path = tmp_path / f"{name}.pem", tmp_path / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_path), str(key_path)


def _peer(name: str, url: str = "http://127.0.0.1:1", cert: tuple[str, str] | None = None) -> PeerConfig:
    return PeerConfig(name, url, extra={"cert": cert[0], "key": cert[1]} if cert else {})


@pytest.mark.parametrize(("days", "level"), [(100, "ok"), (60, "90"), (20, "30"), (5.5, "7"), (-1, "expired")])
def test_client_certificate_levels(tmp_path, days, level):
    (c,) = certificates.inspect([_peer("ladok", cert=_cert(tmp_path, "brygga.example.se", days))], now=NOW,
                                fetch_server=False)
    assert c["kind"] == "client" and c["subject"] == "CN=brygga.example.se" and c["issuer"] == "CN=Brygga Test CA"
    assert c["level"] == level and c["days_left"] == (int(days) if days > 0 else -1)
    assert c["not_after"] == (NOW + dt.timedelta(days=days)).replace(microsecond=0).isoformat()


def test_check_fails_within_seven_days_and_on_an_unreadable_client_certificate(tmp_path):
    assert certificates.check([_peer("nya", cert=_cert(tmp_path, "ok.example.se", 20))], now=NOW, fetch_server=False)
    with pytest.raises(Unhealthy, match=r"nya client certificate CN=soon.example.se expires .* \(5 days left\)"):
        certificates.check([_peer("nya", cert=_cert(tmp_path, "soon.example.se", 5.5))], now=NOW, fetch_server=False)
    with pytest.raises(Unhealthy, match=r"nya client certificate CN=old.example.se expired .* \(1 days ago\)"):
        certificates.check([_peer("nya", cert=_cert(tmp_path, "old.example.se", -0.5))], now=NOW, fetch_server=False)
    missing = _peer("ladok", cert=(str(tmp_path / "gone.pem"), str(tmp_path / "gone.key")))
    (c,) = certificates.inspect([missing], now=NOW, fetch_server=False)
    assert "kan inte läsas" in c["error"]
    with pytest.raises(Unhealthy, match="ladok client certificate: .*gone.pem"):
        certificates.check([missing], now=NOW, fetch_server=False)


def _serve_tls(tmp_path, *, client_ca: str | None = None):
    """An https server on 127.0.0.1 (a thread) whose certificate expires in 5.5 days; with
    ``client_ca`` it demands a client certificate signed by it (TLS 1.2: the handshake fails
    on the client's side without one)."""
    cert, key = _cert(tmp_path, "localhost", 5.5, now=dt.datetime.now(dt.UTC))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    if client_ca:
        ctx.verify_mode, ctx.maximum_version = ssl.CERT_REQUIRED, ssl.TLSVersion.TLSv1_2
        ctx.load_verify_locations(client_ca)
    srv = http.server.HTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return srv, f"https://localhost:{srv.server_address[1]}"


@pytest.fixture
def tls_server(tmp_path):
    srv, url = _serve_tls(tmp_path)
    yield url
    srv.shutdown()
    srv.server_close()


def test_a_peers_server_certificate_is_read_over_tls(tls_server):
    peers = [_peer("arkiv", tls_server), _peer("schema", "http://127.0.0.1:8704"),
             _peer("nya", "https://127.0.0.1:1")]
    by = {c["peer"]: c for c in certificates.inspect(peers, timeout=2)}
    assert by["arkiv"]["kind"] == "server" and by["arkiv"]["subject"] == "CN=localhost"
    assert by["arkiv"]["days_left"] == 5 and by["arkiv"]["level"] == "7"
    assert by["schema"]["note"] == "http: ingen TLS" and "error" not in by["schema"]
    assert "kunde inte hämtas" in by["nya"]["error"]  # unreachable: reported
    with pytest.raises(Unhealthy, match="arkiv server certificate CN=localhost"):
        certificates.check(peers, timeout=2)
    assert certificates.check([peers[1], peers[2]], timeout=2)  # unreachable alone does not fail the check


def test_the_peers_client_certificate_is_presented_when_the_server_demands_one(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_bytes(CA.public_bytes(serialization.Encoding.PEM))
    srv, url = _serve_tls(tmp_path, client_ca=str(ca))
    try:
        (without,) = certificates.inspect([_peer("ladok", url)], timeout=2)
        assert "kunde inte hämtas" in without["error"]  # the server refused the handshake
        client = _cert(tmp_path, "brygga.example.se", 200, now=dt.datetime.now(dt.UTC))
        by = {c["kind"]: c for c in certificates.inspect([_peer("ladok", url, cert=client)], timeout=2)}
        assert by["server"]["subject"] == "CN=localhost" and by["server"]["issuer"] == "CN=Brygga Test CA"
        assert by["client"]["subject"] == "CN=brygga.example.se" and by["client"]["level"] == "ok"
    finally:
        srv.shutdown()
        srv.server_close()


@pytest.mark.parametrize(("units", "url", "extra", "environment"), [
    (("Umeå universitet", "Prod-API"), "https://api.ladok.se", {}, "produktion"),
    (("Umeå universitet", "Int-test-API"), "https://api.integrationstest.ladok.se", {}, "integrationstest"),
    (("Umeå universitet", "Test-API"), "https://api.test.ladok.se", {}, "test"),
    (("Umeå universitet",), "https://api.ladok.se", {}, "okänd"),  # the certificate does not say
    (("Umeå universitet", "Int-test-API"), "https://x", {"environment": "produktion"}, "produktion"),  # the Connection does
    (None, "http://127.0.0.1:8701", {}, "lokal"),  # the simulator
])
def test_the_ladok_environment_is_read_from_the_client_certificate(tmp_path, units, url, extra, environment):
    cert = _cert(tmp_path, "brygga.umu.se", 300, units=units) if units is not None else None
    peer = PeerConfig("ladok", url, extra={**({"cert": cert[0], "key": cert[1]} if cert else {}), **extra})
    assert certificates.ladok_environment(peer) == environment
