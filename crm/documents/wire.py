"""Reading a large request body fast: straight from gunicorn's socket, in large reads.

gunicorn's sync worker hands the app a `Body` whose `read` loops over its `Unreader` in
8 KiB `recv`s, copying every piece through two `BytesIO` buffers; for a 200 MiB upload
that loop was more than half of the worker's time (issue 13's profile). When the request
came through that worker, has a `Content-Length` and nothing has read its body yet,
`body_source()` takes the bytes gunicorn already buffered past the headers and then reads
the rest of the body with `recv_into` into the caller's buffer, up to the declared
length and never a byte beyond it. Any other server (the Werkzeug test client, another
WSGI server) gets a plain reader over `wsgi.input`, so the same code runs everywhere.

`install(app)` swaps the fast reader in as `wsgi.input` for every large body (a multipart
upload included), so the multipart parser (`crm.documents.multipart`) reads the socket
into its 1 MiB buffer too.
"""

from __future__ import annotations

import io
import socket
from collections.abc import Callable
from typing import Any

LARGE_BODY = 1024 * 1024  # smaller bodies keep gunicorn's reader: nothing to gain


class ClientWentAway(ConnectionError):
    """The client closed the connection (or it broke) before its declared length arrived
    (raised by whoever reads: the readers below return a short body, as a closed file
    would)."""


class SocketBody(io.RawIOBase):
    """The rest of one request body, `length` bytes: first what gunicorn had buffered,
    then the socket itself."""

    def __init__(self, sock: socket.socket, buffered: bytes, length: int) -> None:
        self._sock = sock
        self._buffered = memoryview(buffered)
        self.left = length

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self.left <= 0:
            return 0
        view = memoryview(buffer).cast("B")[: self.left]
        if len(self._buffered):
            count = min(len(view), len(self._buffered))
            view[:count] = self._buffered[:count]
            self._buffered = self._buffered[count:]
        else:
            try:
                count = self._sock.recv_into(view)
            except OSError:  # reset, timed out: the same as a close to whoever reads
                count = 0
            if count == 0:  # a short body: Werkzeug's parser answers 400, a part keeps it
                self.left = 0
                return 0
        self.left -= count
        return count


class StreamBody(io.RawIOBase):
    """The same interface over any `wsgi.input` (servers other than gunicorn's sync
    worker, the test client): reads of up to the buffer's size."""

    def __init__(self, stream: Any, length: int) -> None:
        self._stream = stream
        self.left = length

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self.left <= 0:
            return 0
        view = memoryview(buffer).cast("B")
        data = self._stream.read(min(len(view), self.left))
        if not data:
            self.left = 0
            return 0
        view[: len(data)] = data
        self.left -= len(data)
        return len(data)


def _gunicorn_socket_body(environ: dict[str, Any], length: int) -> SocketBody | None:
    """The fast reader, when this is an untouched gunicorn body of known length."""
    stream, sock = environ.get("wsgi.input"), environ.get("gunicorn.socket")
    reader = getattr(stream, "reader", None)
    unreader = getattr(reader, "unreader", None)
    if sock is None or unreader is None or not hasattr(unreader, "sock"):
        return None
    if type(reader).__name__ != "LengthReader" or reader.length != length:
        return None  # chunked, or something already read part of the body
    if stream.buf.getbuffer().nbytes:
        return None
    buffered = unreader.buf.getvalue()
    unreader.buf = io.BytesIO()
    if len(buffered) > length:  # a pipelined next request: leave it to gunicorn
        unreader.buf.write(buffered[length:])
        buffered = buffered[:length]
    reader.length = 0  # gunicorn sees the body as read: it will not read it again
    return SocketBody(sock, buffered, length)


def body_source(environ: dict[str, Any]) -> io.RawIOBase:
    """This request's body as a raw reader of exactly its Content-Length."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    taken = environ.get("crm.socket_body")
    if taken is not None:  # `install` already swapped it in
        return taken
    fast = _gunicorn_socket_body(environ, length)
    if fast is not None:
        return fast
    return StreamBody(environ["wsgi.input"], length)


def install(app: Any) -> None:
    """Every large body of known length is read from the socket directly (multipart
    uploads through Werkzeug's parser included)."""
    inner: Callable[..., Any] = app.wsgi_app

    def fast_bodies(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length >= LARGE_BODY:
            fast = _gunicorn_socket_body(environ, length)
            if fast is not None:
                environ["crm.socket_body"] = fast
                environ["wsgi.input"] = io.BufferedReader(fast, LARGE_BODY)
        return inner(environ, start_response)

    app.wsgi_app = fast_bodies
