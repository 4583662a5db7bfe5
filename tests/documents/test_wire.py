"""The fast body reader: gunicorn's buffered bytes first, then the socket, never past the
declared length; a closed connection is a short body; anything else reads wsgi.input."""

from __future__ import annotations

import io
import socket

from crm.documents.wire import SocketBody, StreamBody, body_source


def _read_all(body, size: int = 7) -> bytes:
    out, buffer = bytearray(), bytearray(size)
    while count := body.readinto(buffer):
        out += buffer[:count]
    return bytes(out)


def test_the_buffered_bytes_come_first_then_the_socket_up_to_the_length_and_no_further():
    ours, theirs = socket.socketpair()
    try:
        theirs.sendall(b"-rest of the body-NEXT REQUEST")
        body = SocketBody(ours, b"head", length=len(b"head-rest of the body-"))
        assert _read_all(body) == b"head-rest of the body-"
        assert ours.recv(100) == b"NEXT REQUEST"  # not a byte past the declared length
    finally:
        ours.close()
        theirs.close()


def test_a_connection_closed_early_is_a_short_body():
    ours, theirs = socket.socketpair()
    try:
        theirs.sendall(b"only this")
        theirs.close()
        body = SocketBody(ours, b"", length=1000)
        assert _read_all(body) == b"only this"
        assert body.readinto(bytearray(10)) == 0
    finally:
        ours.close()


def test_any_other_server_reads_wsgi_input():
    environ = {"CONTENT_LENGTH": "5", "wsgi.input": io.BytesIO(b"hello, and more")}
    body = body_source(environ)
    assert isinstance(body, StreamBody)
    assert _read_all(body, 2) == b"hello"
