"""multipart/form-data read by python-multipart, the file's bytes handed on without copies.

Werkzeug's parser reads the body 64 KiB at a time and copies every piece four or five
times (the read, its own buffer, the slices it searches and hands out); for a 200 MiB
upload that was about a third of the worker's CPU (issue 13's profile). Here the body is
read into one 1 MiB buffer (`readinto`: with `wire.py` straight from the socket) and each
full buffer is handed to python-multipart's `MultipartParser` (the streaming parser
Starlette and FastAPI use), which finds the delimiters and reads the part headers and
calls back with `(buffer, start, end)`: a file part's bytes go to its stream
(`upload.SealingTempFile`) as views of the buffer, which the stream copies once into the
chunk it seals. Per 200 MiB it costs what the hand-written parser it replaced cost (the
figures are below, and in README, "Documents at rest"). What it returns, and the limits
it keeps, are Werkzeug's: the same `MultiDict`s of fields and `FileStorage`s,
`max_form_parts` and `max_form_memory_size` (413), a part's headers at most `MAX_HEADERS`
bytes (413), and a body that ends before its closing delimiter is a `ValueError`
(Werkzeug's "Unexpected end of form": the form is then empty, and the view says what is
missing).

Where python-multipart reads a body otherwise than Werkzeug, this module adapts it
(`tests/documents/test_multipart.py` parses the same bodies with both):

- A preamble before the first delimiter: Werkzeug ignores it, python-multipart refuses
  the body. The first delimiter is found here (`_first_delimiter`) and the parser is fed
  from it.
- A part with headers and no body (RFC 2046: `body-part := MIME-part-headers [CRLF
  *OCTET]`, so the CRLF after its headers is the delimiter's; Werkzeug's test client
  writes an empty field or file so): python-multipart reads the delimiter and the next
  part as this part's data, without an error. A part's first bytes are held until they
  are known not to be `--boundary`; if they are, the part ends empty and a fresh parser
  reads on from that delimiter (fed `PIECE` bytes at a time from there, so a part with no
  body costs a copy of at most 64 KiB, not of the rest of the buffer).
- A body that ends before its closing delimiter: python-multipart's `finalize` does not
  check; here the parser must have reached its end.
- Header limits: python-multipart's own (8 headers per part, 4 KiB a line) are lifted; a
  part's header bytes are counted here against `MAX_HEADERS`, as before.
- Transport padding after the first delimiter (RFC 2046): python-multipart takes it
  after the others only; here the first delimiter's line is handed on without it.

Still read otherwise than by Werkzeug (and the hand-written parser this replaced): a bare
CR or LF right after the first delimiter, a header line without a colon or a header name
outside an HTTP token, and a boundary over 256 bytes are refused (python-multipart's
`MultipartParseError`, a `ValueError`, logged by it as a warning): the form is empty.
No browser or HTTP client writes them.

Measured against that hand-written parser (a `bytearray.find` delimiter search over the
same buffer): worker CPU per 200 MiB one-shot upload, `bench/upload.py --rounds 5`, five
runs each alternated, 25 uploads each, on the shared 2-core machine (load 1.7-6.0): median
0.41 s before, 0.42 s with python-multipart (means 0.421 and 0.426); the parsing alone over a
200 MiB body in memory, 0.067-0.068 s against 0.068-0.071 s (Werkzeug's: 0.091-0.096 s).
"""

from __future__ import annotations

from typing import IO, Any

from python_multipart.multipart import MultipartParser, MultipartState
from werkzeug.datastructures import FileStorage, Headers
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.formparser import FormDataParser, MultiPartParser
from werkzeug.http import parse_options_header
from werkzeug.sansio.multipart import File

BUFFER = 2**20
PIECE = 64 * 1024  # how much is fed at a time after a part with no body (see above)
MAX_HEADERS = 16 * 1024  # a part's headers; more is not a form anyone sends
_NO_LIMIT = 2**62  # python-multipart's header limits: ours are counted in the callbacks
# what may follow the first delimiter, besides "--": a line break or its padding, or the
# body's end (then cut short)
_AFTER_A_DELIMITER = frozenset({b"\r", b"\n", b" ", b"\t", b""})


class _EmptyPart(Exception):
    """The part just begun has no body: its data starts with `--boundary` (the library
    would read on as data). `rest_at`: where that delimiter ends in what was fed."""

    def __init__(self, rest_at: int) -> None:
        super().__init__(rest_at)
        self.rest_at = rest_at


def _fill(stream: IO[bytes], view: memoryview) -> int:
    """`view` filled from the stream (shorter only at the body's end); how much was read."""
    filled = 0
    while filled < len(view):
        count = stream.readinto(view[filled:]) or 0
        if not count:
            break
        filled += count
    return filled


class StreamingMultiPartParser(MultiPartParser):
    def parse(
        self, stream: IO[bytes], boundary: bytes, content_length: int | None
    ) -> tuple[Any, Any]:
        self._boundary = boundary
        self._marker = b"--" + boundary
        self._content_length = content_length
        self._fields: list[tuple[str, str]] = []
        self._files: list[tuple[str, FileStorage]] = []
        self._parts = 0
        self._done = False
        buffer = bytearray(max(BUFFER, 4 * len(self._marker)))
        view = memoryview(buffer)
        at, end = self._first_delimiter(stream, buffer, view)
        chunk: Any = buffer if end == len(buffer) else bytes(view[:end])
        parser = self._parser()
        prefix = b""  # after a part with no body: its delimiter, fed to a fresh parser
        line = at + len(self._marker)
        head = bytes(buffer[line : min(end, line + 256)])
        padded = len(head) - len(head.lstrip(b" \t"))
        if padded and head.startswith(b"\r\n", padded):
            # transport padding after the first delimiter (RFC 2046: receivers must take
            # it; python-multipart takes it after the others only)
            prefix, at = self._marker + b"\r\n", line + padded + 2
        elif not buffer[:at].strip(b"\r\n"):
            at = 0  # only line breaks before it (Werkzeug's client): the parser skips them
        while not self._done:
            if at >= len(chunk) and not prefix:
                end = _fill(stream, view)
                if not end:
                    break
                chunk, at = (buffer if end == len(buffer) else bytes(view[:end])), 0
            # the whole buffer as it was read; after a preamble or a part with no body,
            # copies of at most PIECE bytes
            piece = chunk if at == 0 and not prefix else prefix + chunk[at : at + PIECE]
            self._piece = piece
            try:
                parser.write(piece)
            except _EmptyPart as empty:
                self._finish_part()
                parser = self._parser()
                at += empty.rest_at - len(prefix)
                prefix = self._marker
                continue
            at += len(piece) - len(prefix)
            prefix = b""
        if not self._done or parser.state != MultipartState.END:
            raise ValueError("Unexpected end of form")
        return self.cls(self._fields), self.cls(self._files)

    def _parser(self) -> MultipartParser:
        callbacks: Any = {
            "on_part_begin": self._part_begin,
            "on_header_field": self._header_field,
            "on_header_value": self._header_value,
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._part_data,
            "on_part_end": self._part_end,
            "on_end": self._end,
        }
        return MultipartParser(
            self._boundary, callbacks, max_header_count=_NO_LIMIT, max_header_size=_NO_LIMIT
        )

    def _first_delimiter(
        self, stream: IO[bytes], buffer: bytearray, view: memoryview
    ) -> tuple[int, int]:
        """The body read into `buffer` up to its first delimiter (`--boundary` at the
        start or after a line break, followed by `--` or a line break or its padding):
        where that starts and where what is read ends. What is before it is a preamble,
        ignored as Werkzeug ignores it (the bytes that may begin a delimiter are kept
        when the buffer is read again)."""
        delimiter = b"\r\n" + self._marker
        end = _fill(stream, view)
        found = 0 if buffer.startswith(self._marker, 0, end) else -1
        search_from = 0
        while True:
            if found < 0:
                found = buffer.find(delimiter, search_from, end)
                found = found + 2 if found >= 0 else -1
            if found >= 0:
                after = found + len(self._marker)
                if after + 2 <= end or end < len(buffer):
                    following = bytes(buffer[after : after + 2])
                    if following == b"--" or following[:1] in _AFTER_A_DELIMITER:
                        return found, end
                    search_from, found = max(0, found - 1), -1  # data: look on past it
                    continue
            if end < len(buffer):
                raise ValueError("Missing boundary")
            keep = len(delimiter) + 1
            buffer[:keep] = buffer[end - keep : end]
            end = keep + _fill(stream, view[keep:])
            found, search_from = -1, 0

    # python-multipart's callbacks, in the order it calls them
    def _part_begin(self) -> None:
        self._parts += 1
        if self.max_form_parts is not None and self._parts > self.max_form_parts:
            raise RequestEntityTooLarge()
        self._headers: list[tuple[str, str]] = []
        self._header_name = bytearray()
        self._header_value_ = bytearray()
        self._header_bytes = 0

    def _count(self, size: int) -> None:
        self._header_bytes += size
        if self._header_bytes > MAX_HEADERS:
            raise RequestEntityTooLarge()

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._count(end - start)
        self._header_name += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._count(end - start)
        self._header_value_ += data[start:end]

    def _header_end(self) -> None:
        name = self._header_name.decode().strip(" \t")
        self._headers.append((name, self._header_value_.decode().strip(" \t")))
        self._header_name, self._header_value_ = bytearray(), bytearray()

    def _headers_finished(self) -> None:
        headers = Headers(self._headers)
        _, extra = parse_options_header(headers.get("content-disposition"))
        name, filename = extra.get("name", ""), extra.get("filename")
        self._part = (name, filename, headers)
        self._held = bytearray()  # the part's first bytes, until they are not `--boundary`
        self._holding = True
        if filename is not None:
            event = File(name=name, filename=filename, headers=headers)
            self._container = self.start_file_streaming(event, self._content_length)
            self._sink = self._container.write
        else:
            self._pieces: list[bytes] = []
            self._size = 0
            self._sink = self._keep

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._holding:
            taken = data[start : min(end, start + len(self._marker) - len(self._held))]
            self._held += taken
            if not self._marker.startswith(self._held):
                self._holding = False
                self._sink(memoryview(bytes(self._held)))
                start += len(taken)
            elif len(self._held) < len(self._marker):
                return
            elif data is self._piece:  # the part has no body: this is the next delimiter
                raise _EmptyPart(start + len(taken))
            else:  # pragma: no cover - the library's look-behind bytes begin with CR
                raise ValueError("A part's first bytes read out of order")
        if end > start:
            self._sink(memoryview(data)[start:end])

    def _keep(self, view: memoryview) -> None:
        self._size += len(view)
        if self.max_form_memory_size is not None and self._size > self.max_form_memory_size:
            raise RequestEntityTooLarge()
        self._pieces.append(bytes(view))

    def _part_end(self) -> None:
        if self._holding and self._held:
            self._sink(memoryview(bytes(self._held)))
        self._finish_part()

    def _finish_part(self) -> None:
        name, filename, headers = self._part
        if filename is not None:
            self._container.seek(0)
            self._files.append(
                (name, FileStorage(self._container, filename, name, headers=headers))
            )
        else:
            value = b"".join(self._pieces).decode(self.get_part_charset(headers), "replace")
            self._fields.append((name, value))

    def _end(self) -> None:
        self._done = True


class StreamingFormDataParser(FormDataParser):
    """Werkzeug's form parser with `StreamingMultiPartParser` for multipart bodies."""

    def _parse_multipart(
        self, stream: IO[bytes], mimetype: str, content_length: int | None, options: dict
    ) -> Any:
        parser = StreamingMultiPartParser(
            stream_factory=self.stream_factory,
            max_form_memory_size=self.max_form_memory_size,
            max_form_parts=self.max_form_parts,
            cls=self.cls,
        )
        boundary = options.get("boundary", "").encode("ascii")
        if not boundary:
            raise ValueError("Missing boundary")
        form, files = parser.parse(stream, boundary, content_length)
        return stream, form, files
