"""adapters.http: a reply broken off mid-body is a transient PeerError; a POST is not resent."""

import socket
import threading

import pytest

from adapters.http import PeerError, TransportError, session
from brygga.connections import PeerConfig


def _server(reply: bytes, accepts: list):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()

    def serve():
        while True:
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            accepts.append(1)
            conn.recv(65536)
            conn.sendall(reply)
            conn.close()

    threading.Thread(target=serve, daemon=True).start()
    return sock


def test_a_body_broken_off_is_a_transient_peer_error():
    accepts: list = []
    sock = _server(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n<partial", accepts)
    try:
        client = session(PeerConfig("nya", f"http://127.0.0.1:{sock.getsockname()[1]}"))
        r = client.request("GET", f"http://127.0.0.1:{sock.getsockname()[1]}/x", stream=True)
        with pytest.raises(PeerError) as e:
            while r.raw.read(64):
                pass
        assert e.value.transient and e.value.peer == "nya"
    finally:
        sock.close()


def test_a_post_whose_connection_drops_after_sending_is_not_resent():
    accepts: list = []
    sock = _server(b"", accepts)  # read the request, then hang up without an answer
    try:
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        with pytest.raises(TransportError):
            session(PeerConfig("ladok", url)).request("POST", url + "/place", data=b"<x/>")
        assert len(accepts) == 1
        with pytest.raises(TransportError):  # an idempotent GET is retried on the same failure
            session(PeerConfig("ladok", url)).request("GET", url + "/student")
        assert len(accepts) > 2
    finally:
        sock.close()
