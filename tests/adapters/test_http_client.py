"""adapters.http: the keep-alive HTTP/1.1 client the adapters share.

Each test runs a small scripted server on a real socket: it reads whole requests (head + body by
Content-Length) and answers with the bytes a test gives, so framing, keep-alive, retries and TLS are
exercised the way a peer would exercise them.
"""

from __future__ import annotations

import datetime as dt
import gzip
import socket
import ssl
import threading
import time

import pytest

from adapters.http import PeerError, TransportError, session
from brygga.connections import PeerConfig


class Peer:
    """A scripted HTTP peer. ``answer(request_bytes, n)`` returns the reply bytes for request n (0-based),
    or None to hang up without answering. ``requests``: every request received; ``accepts``: connections."""

    def __init__(self, answer, *, tls: ssl.SSLContext | None = None, close_after: bool = False):
        self.answer, self.tls, self.close_after = answer, tls, close_after
        self.requests: list[bytes] = []
        self.accepts = 0
        self.conns: list[socket.socket] = []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.port = self.sock.getsockname()[1]
        self.url = f"{'https' if tls else 'http'}://{'localhost' if tls else '127.0.0.1'}:{self.port}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepts += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            if self.tls:
                conn = self.tls.wrap_socket(conn, server_side=True)
            self.conns.append(conn)
            buf = b""
            while True:
                while b"\r\n\r\n" not in buf:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buf += data
                head, _, rest = buf.partition(b"\r\n\r\n")
                length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), 0)
                while len(rest) < length:
                    rest += conn.recv(65536)
                request, buf = head + b"\r\n\r\n" + rest[:length], rest[length:]
                self.requests.append(request)
                reply = self.answer(request, len(self.requests) - 1)
                if reply is None:
                    return
                conn.sendall(reply)
                if self.close_after:
                    return
        except (OSError, ssl.SSLError):
            return
        finally:
            conn.close()

    def close(self) -> None:
        self.sock.close()


def ok(body: bytes = b"<ok/>", *headers: str, status: str = "200 OK") -> bytes:
    head = "".join(f"{h}\r\n" for h in headers)
    return f"HTTP/1.1 {status}\r\nContent-Length: {len(body)}\r\n{head}\r\n".encode() + body


@pytest.fixture
def peers():
    made: list[Peer] = []

    def make(answer, **kw) -> Peer:
        made.append(Peer(answer, **kw))
        return made[-1]

    yield make
    for p in made:
        p.close()


def client(url: str, **extra):
    c = session(PeerConfig("ladok", url, extra=extra))
    c.backoff = 0.01  # retries without the production backoff
    return c


def test_requests_reuse_one_kept_alive_connection(peers):
    peer = peers(lambda req, n: ok(f"<n>{n}</n>".encode()))
    c = client(peer.url)
    assert [c.get(peer.url + "/a").content for _ in range(3)] == [b"<n>0</n>", b"<n>1</n>", b"<n>2</n>"]
    r = c.post(peer.url + "/b", data=b"<x/>", headers={"Content-Type": "application/xml"})
    assert r.status_code == 200 and r.headers["Content-Length"] == r.headers["content-length"] == "8"  # <n>3</n>
    assert peer.accepts == 1
    assert peer.requests[3].startswith(b"POST /b HTTP/1.1\r\n") and peer.requests[3].endswith(b"\r\n\r\n<x/>")
    assert b"Content-Length: 4\r\n" in peer.requests[3] and f"Host: 127.0.0.1:{peer.port}".encode() in peer.requests[0]


def test_params_and_basic_auth_go_into_the_request(peers):
    peer = peers(lambda req, n: ok())
    c = session(PeerConfig("ladok", peer.url, login="lis", password="hemligt"))  # base64 of lis:hemligt below
    c.get(peer.url + "/s", params=[("personnummer", "1"), ("personnummer", "2"), ("limit", 2)]).content
    assert peer.requests[0].startswith(b"GET /s?personnummer=1&personnummer=2&limit=2 HTTP/1.1\r\n")
    assert b"Authorization: Basic bGlzOmhlbWxpZ3Q=\r\n" in peer.requests[0]


def test_chunked_gzip_and_connection_delimited_bodies_are_read_whole(peers):
    body = b"<feed>" + b"<entry/>" * 5000 + b"</feed>"
    packed = gzip.compress(body)
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(packed[i:i + 1000]), packed[i:i + 1000])
                      for i in range(0, len(packed), 1000)) + b"0\r\n\r\n"
    replies = [
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Encoding: gzip\r\n\r\n" + chunks,
        b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + body,
    ]
    peer = peers(lambda req, n: replies[n % 2], close_after=True)
    c = client(peer.url)
    assert c.get(peer.url + "/1").content == body
    assert c.get(peer.url + "/2").content == body
    streamed = c.get(peer.url + "/3", stream=True)
    pieces = []
    while piece := streamed.raw.read(333):
        assert len(piece) <= 333
        pieces.append(piece)
    assert b"".join(pieces) == body


def test_a_body_broken_off_is_a_transient_peer_error(peers):
    peer = peers(lambda req, n: b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n<partial", close_after=True)
    r = client(peer.url).request("GET", peer.url + "/x", stream=True)
    with pytest.raises(PeerError) as e:
        while r.raw.read(64):
            pass
    assert e.value.transient and e.value.peer == "ladok"
    with pytest.raises(TransportError):  # read whole: the same break is a transport failure, retried then given up
        client(peer.url).get(peer.url + "/x")
    assert len(peer.requests) == 1 + 4


def test_a_post_whose_connection_drops_after_sending_is_not_resent(peers):
    peer = peers(lambda req, n: None)  # read the request, then hang up without an answer
    with pytest.raises(TransportError):
        client(peer.url).request("POST", peer.url + "/place", data=b"<x/>")
    assert peer.accepts == 1 and len(peer.requests) == 1
    with pytest.raises(TransportError):  # an idempotent GET is retried on the same failure
        client(peer.url).request("GET", peer.url + "/student")
    assert len(peer.requests) == 1 + 4


def test_an_idle_connection_the_peer_closed_is_not_used_for_a_post(peers):
    """The peer closes kept-alive connections when idle (uvicorn: after 5 s). The client notices
    before sending, so the POST goes out once, on a new connection, and succeeds."""
    peer = peers(lambda req, n: ok())
    c = client(peer.url)
    assert c.get(peer.url + "/a").status_code == 200
    deadline = time.monotonic() + 5
    while not peer.conns and time.monotonic() < deadline:
        time.sleep(0.01)
    peer.conns[0].shutdown(socket.SHUT_RDWR)  # the server side goes away
    time.sleep(0.1)
    assert c.post(peer.url + "/place", data=b"<x/>").status_code == 200
    assert peer.accepts == 2 and [r.split(b" ")[0] for r in peer.requests] == [b"GET", b"POST"]


def test_gets_are_retried_on_503_and_posts_are_not(peers):
    peer = peers(lambda req, n: ok(status="503 Service Unavailable") if n % 3 < 2 else ok(b"<ja/>"))
    c = client(peer.url)
    r = c.get(peer.url + "/a")
    assert (r.status_code, r.content, len(peer.requests)) == (200, b"<ja/>", 3)
    assert c.post(peer.url + "/b", data=b"<x/>").status_code == 503 and len(peer.requests) == 4


def test_no_retries_when_asked(peers):
    peer = peers(lambda req, n: ok(status="503 Service Unavailable"))
    assert session(PeerConfig("ladok", peer.url), retries=False).get(peer.url + "/a").status_code == 503
    assert len(peer.requests) == 1


def test_a_peer_that_does_not_answer_in_time_is_a_transport_error(peers):
    peer = peers(lambda req, n: time.sleep(1.5) or ok())
    c = client(peer.url, timeout=0.2)
    c.retries = 0
    t = time.monotonic()
    with pytest.raises(TransportError, match="timed out"):
        c.get(peer.url + "/slow", timeout=0.2)
    assert time.monotonic() - t < 1.0


def test_refused_connections_and_garbage_are_transport_errors(peers):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nobody listens here
    c = client(f"http://127.0.0.1:{port}")
    with pytest.raises(TransportError):
        c.post(f"http://127.0.0.1:{port}/x", data=b"<x/>")
    peer = peers(lambda req, n: b"SMTP ready\r\n\r\n", close_after=True)
    with pytest.raises(TransportError, match="unreadable"):
        client(peer.url).post(peer.url + "/x", data=b"<x/>")


# ------------------------------------------------------------------------------------------- TLS
def _cert(subject: str, issuer_key, issuer_name, key, *, ca: bool):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    now = dt.datetime.now(dt.timezone.utc)
    b = (x509.CertificateBuilder().subject_name(name).issuer_name(issuer_name or name).public_key(key.public_key())
         .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
         .not_valid_after(now + dt.timedelta(days=1))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if not ca:
        b = b.add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
    return b.sign(issuer_key, hashes.SHA256()), name


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A CA, a server certificate for localhost and a client certificate, as PEM files."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    d = tmp_path_factory.mktemp("pki")
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca, ca_name = _cert("Brygga test CA", ca_key, None, ca_key, ca=True)
    files = {"ca": d / "ca.pem"}
    files["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    for who in ("server", "client"):
        key = ec.generate_private_key(ec.SECP256R1())
        cert, _ = _cert(who, ca_key, ca_name, key, ca=False)
        (d / f"{who}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        (d / f"{who}.key").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                         serialization.PrivateFormat.PKCS8,
                                                         serialization.NoEncryption()))
        files[who], files[f"{who}_key"] = d / f"{who}.pem", d / f"{who}.key"
    return {k: str(v) for k, v in files.items()}


def _server_tls(pki, *, require_client: bool) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pki["server"], pki["server_key"])
    if require_client:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(pki["ca"])
    return ctx


def test_tls_with_the_peers_ca_and_a_client_certificate(peers, pki):
    peer = peers(lambda req, n: ok(b"<hemlig/>"), tls=_server_tls(pki, require_client=True))
    c = client(peer.url, verify=pki["ca"], cert=pki["client"], key=pki["client_key"])
    assert [c.get(peer.url + "/s").content for _ in range(2)] == [b"<hemlig/>"] * 2
    assert peer.accepts == 1
    no_cert = client(peer.url, verify=pki["ca"])
    no_cert.retries = 0
    with pytest.raises(TransportError):  # the peer demands a client certificate
        no_cert.get(peer.url + "/s")


def test_tls_refuses_a_server_it_cannot_verify_unless_told_not_to(peers, pki):
    peer = peers(lambda req, n: ok(), tls=_server_tls(pki, require_client=False))
    strict = client(peer.url)  # the system CAs do not know the test CA
    strict.retries = 0
    with pytest.raises(TransportError, match="CERTIFICATE_VERIFY_FAILED"):
        strict.get(peer.url + "/s")
    assert client(peer.url, verify=False).get(peer.url + "/s").status_code == 200


# ------------------------------------------------------------------- what a review found (fixed)
def test_interim_1xx_replies_are_skipped_not_taken_for_the_answer(peers):
    """A 100/102/103 before the real reply (load balancers send 103 Early Hints): the caller gets
    the final reply, and the next request on the kept-alive connection gets its own."""
    replies = [b"HTTP/1.1 103 Early Hints\r\nLink: </x>; rel=preload\r\n\r\n" + ok(b"<first/>", "X-A: 1"),
               b"HTTP/1.1 100 Continue\r\n\r\n" + ok(b"<created/>", status="201 Created"),
               ok(b"<third/>")]
    peer = peers(lambda req, n: replies[n])
    c = client(peer.url)
    first = c.get(peer.url + "/a")
    assert (first.status_code, first.content, first.headers.get("link")) == (200, b"<first/>", None)
    created = c.post(peer.url + "/b", data=b"<x/>")
    assert (created.status_code, created.content) == (201, b"<created/>")
    assert c.get(peer.url + "/c").content == b"<third/>" and peer.accepts == 1


def test_paths_are_percent_encoded_and_headers_checked(peers):
    peer = peers(lambda req, n: ok())
    c = client(peer.url)
    c.get(peer.url + "/kod/ÅÄÖ 1/x", params={"namn": "Åsa Öberg"}).content
    assert peer.requests[0].startswith(b"GET /kod/%C3%85%C3%84%C3%96%201/x?namn=%C3%85sa+%C3%96berg HTTP/1.1\r\n")
    with pytest.raises(ValueError):
        c.get(peer.url + "/a", headers={"X-Corr": "a\r\nX-Injected: 1"})
    c.post(peer.url + "/b", data=b"<x/>", headers={"content-length": "99", "host": "ladok.example"}).content
    head = peer.requests[1].split(b"\r\n\r\n")[0].lower()
    assert head.count(b"content-length") == 1 and b"content-length: 4" in head
    assert head.count(b"host:") == 1 and b"host: ladok.example" in head


def test_bytes_after_a_complete_reply_keep_the_reply_but_not_the_connection(peers):
    peer = peers(lambda req, n: b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n<ok/>/>" if n == 0 else ok(b"<2/>"))
    c = client(peer.url)
    r = c.post(peer.url + "/place", data=b"<x/>")
    assert (r.status_code, r.content) == (200, b"<ok/>")
    assert c.get(peer.url + "/a").content == b"<2/>" and peer.accepts == 2


def test_a_connection_idle_too_long_is_not_reused(peers, monkeypatch):
    import adapters.http as http

    peer = peers(lambda req, n: ok())
    c = client(peer.url)
    c.get(peer.url + "/a").content
    monkeypatch.setattr(http, "IDLE_MAX", 0.05)  # a load balancer that silently drops idle connections
    time.sleep(0.1)
    c.post(peer.url + "/b", data=b"<x/>").content
    assert peer.accepts == 2


def test_the_timeout_covers_the_whole_reply_not_each_piece(peers):
    peer = peers(lambda req, n: ok(b"<x/>"))
    # a peer that sends one byte every 0.1 s: each read is quick, the reply as a whole is not
    slow = socket.socket()
    slow.bind(("127.0.0.1", 0))
    slow.listen()

    def dripper():
        conn, _ = slow.accept()
        conn.recv(65536)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n")
        try:
            for _ in range(100):
                conn.sendall(b"x")
                time.sleep(0.1)
        except OSError:
            pass
        conn.close()

    threading.Thread(target=dripper, daemon=True).start()
    url = f"http://127.0.0.1:{slow.getsockname()[1]}"
    c = client(url)
    c.retries = 0
    t = time.monotonic()
    with pytest.raises(TransportError, match="timed out"):
        c.get(url + "/slow", timeout=0.5)
    assert time.monotonic() - t < 1.5
    slow.close()
    assert client(peer.url).get(peer.url + "/fast", timeout=0.5).content == b"<x/>"


def test_gzip_members_are_all_read_and_a_cut_gzip_body_is_an_error(peers):
    two = gzip.compress(b"part1-") + gzip.compress(b"part2")
    cut = gzip.compress(b"<feed>" + bytes(range(256)) * 400 + b"</feed>")[:-200]
    replies = [ok(two, "Content-Encoding: gzip"), ok(cut, "Content-Encoding: gzip")]
    peer = peers(lambda req, n: replies[min(n, 1)])
    c = client(peer.url)
    assert c.get(peer.url + "/1").content == b"part1-part2"
    with pytest.raises(TransportError, match="cut short"):
        c.get(peer.url + "/2")


# ------------------------------------------------------------------ the libcurl transport's own rules
class ConnectProxy:
    """A forward proxy on a real socket: ``CONNECT host:port`` opens a tunnel; an absolute-form
    request (``GET http://host:port/path``) is passed on to its host as it is. ``seen``: the first
    line of every request the proxy got."""

    def __init__(self):
        self.seen: list[bytes] = []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        head = b""
        while b"\r\n\r\n" not in head:
            data = conn.recv(65536)
            if not data:
                conn.close()
                return
            head += data
        first = head.split(b"\r\n", 1)[0]
        self.seen.append(first)
        method, target, _ = first.split(b" ", 2)
        if method == b"CONNECT":
            host, port = target.rsplit(b":", 1)
            upstream = socket.create_connection((host.decode(), int(port)))
            conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            rest = head.split(b"\r\n\r\n", 1)[1]
        else:
            hostport = target.split(b"/")[2]
            host, port = hostport.rsplit(b":", 1)
            upstream = socket.create_connection((host.decode(), int(port)))
            rest = head
        if rest:
            upstream.sendall(rest)
        threading.Thread(target=self._pipe, args=(upstream, conn), daemon=True).start()
        self._pipe(conn, upstream)

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def proxy():
    p = ConnectProxy()
    yield p
    p.close()


def test_https_through_a_connect_proxy_from_the_environment_and_no_proxy_bypasses_it(peers, pki, proxy,
                                                                                     monkeypatch):
    peer = peers(lambda req, n: ok(b"<via/>"), tls=_server_tls(pki, require_client=False))
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    assert client(peer.url, verify=pki["ca"]).get(peer.url + "/s").content == b"<via/>"
    assert proxy.seen == [f"CONNECT localhost:{peer.port} HTTP/1.1".encode()]  # TLS end to end, tunnelled
    monkeypatch.setenv("NO_PROXY", "localhost")
    assert client(peer.url, verify=pki["ca"]).get(peer.url + "/s").content == b"<via/>"
    assert len(proxy.seen) == 1 and peer.accepts == 2  # the second went straight to the peer


def test_a_proxy_named_in_the_connection_extra(peers, proxy, monkeypatch):
    peer = peers(lambda req, n: ok(b"<via/>"))
    for var in ("http_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(var, raising=False)
    assert client(peer.url, proxy=proxy.url).get(peer.url + "/x?a=1").content == b"<via/>"
    assert proxy.seen == [f"GET {peer.url}/x?a=1 HTTP/1.1".encode()]
    monkeypatch.setenv("http_proxy", proxy.url)  # "" in the extra: no proxy, whatever the environment says
    assert client(peer.url, proxy="").get(peer.url + "/y").content == b"<via/>"
    assert len(proxy.seen) == 1


def _trickler(head: bytes, every: float, pieces: int = 1000):
    """A peer that sends ``head`` and then one byte every ``every`` seconds."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    accepted: list[int] = []

    def serve():
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            accepted.append(1)
            threading.Thread(target=drip, args=(conn,), daemon=True).start()

    def drip(conn):
        conn.recv(65536)
        try:
            conn.sendall(head)
            for _ in range(pieces):
                conn.sendall(b"x")
                time.sleep(every)
        except OSError:
            pass
        conn.close()

    threading.Thread(target=serve, daemon=True).start()
    return srv, f"http://127.0.0.1:{srv.getsockname()[1]}", accepted


def test_a_trickling_peer_is_cut_at_the_deadline_and_not_retried():
    """200 bytes every 2 s would keep a per-read timeout happy for ever; the deadline bounds the
    exchange (retries included: a GET that timed out is not tried again)."""
    srv, url, accepted = _trickler(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n", 0.1)
    c = client(url, timeout=0.8)
    t = time.monotonic()
    with pytest.raises(TransportError, match="timed out"):
        c.get(url + "/feed/1")
    assert time.monotonic() - t < 1.6 and len(accepted) == 1
    srv.close()


def test_a_streamed_reply_has_a_deadline_of_its_own_and_a_stall_limit():
    srv, url, _ = _trickler(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n", 0.05)
    r = client(url, timeout=0.5, stream_timeout=1.0).get(url + "/admissions", stream=True)
    t = time.monotonic()
    with pytest.raises(PeerError, match="timed out") as e:  # each byte is in time, the whole is not
        while r.raw.read(64):
            pass
    assert e.value.transient and 0.6 < time.monotonic() - t < 1.6
    srv.close()
    stalled, url, _ = _trickler(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n", 5.0)
    r = client(url, timeout=0.4, stream_timeout=60).get(url + "/admissions", stream=True)
    t = time.monotonic()
    with pytest.raises(PeerError, match="waiting for the rest"):  # nothing for longer than timeout
        while r.raw.read(64):
            pass
    assert time.monotonic() - t < 1.5
    stalled.close()


def test_the_deadline_covers_the_retries(peers):
    peer = peers(lambda req, n: ok(status="503 Service Unavailable"))
    c = client(peer.url, timeout=1.0)
    c.backoff = 0.4  # 0.4 + 0.8 would pass the deadline: the second retry is not made
    t = time.monotonic()
    assert c.get(peer.url + "/a").status_code == 503
    assert len(peer.requests) == 2 and time.monotonic() - t < 1.0


def test_a_post_on_a_kept_alive_connection_that_dies_unanswered_is_not_resent_by_libcurl(peers):
    """libcurl resends a request on a reused connection that closes without a byte of reply. Here
    the peer did read the POST: going out again would place the admission twice."""
    peer = peers(lambda req, n: ok() if n == 0 else None)  # the second request is read, then hung up on
    c = client(peer.url)
    assert c.get(peer.url + "/a").status_code == 200
    with pytest.raises(TransportError, match="not resent"):
        c.post(peer.url + "/place", data=b"<x/>")
    assert [r.split(b" ")[0] for r in peer.requests] == [b"GET", b"POST"] and peer.accepts == 1


def test_a_large_streamed_reply_read_slowly_waits_in_a_bounded_buffer(peers):
    import hashlib

    import adapters.http as http

    body = bytes(range(256)) * (32 * 1024 * 1024 // 256)  # 32 MiB
    peer = peers(lambda req, n: ok(body))
    r = client(peer.url).get(peer.url + "/big", stream=True)
    digest, most = hashlib.sha256(), 0
    time.sleep(0.2)  # the peer has sent what the socket buffers hold; libcurl must not take it all in
    while piece := r.raw.read(65536):
        digest.update(piece)
        t = r._transfer
        if t is not None:
            most = max(most, t.buffered + r.raw._size)
    assert digest.digest() == hashlib.sha256(body).digest()
    assert most <= http.STREAM_BUFFER + 2 * 256 * 1024  # the pause threshold, plus a piece or two


def test_connections_of_threads_that_ended_are_closed_not_kept(peers):
    from concurrent.futures import ThreadPoolExecutor

    peer = peers(lambda req, n: ok(b"<ok/>"))
    c = client(peer.url)
    for _ in range(5):  # a pool per round, as a task or a chunk makes one
        with ThreadPoolExecutor(4) as pool:
            assert list(pool.map(lambda _: c.get(peer.url + "/a").content, range(8))) == [b"<ok/>"] * 8
    c.get(peer.url + "/a")  # a new thread's first request closes what the ended threads kept
    assert len(c._locals) <= 5  # this thread's and at most the last pool's 4, not 5 x 4 + 1
    c.close()
