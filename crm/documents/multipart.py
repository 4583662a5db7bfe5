"""multipart/form-data read without copying the file's bytes on the way.

Werkzeug's parser reads the body 64 KiB at a time and copies every piece four or five
times (the read, its own buffer, the slices it searches and hands out); for a 200 MiB
upload that was about a third of the worker's CPU (issue 13's profile). This parser
reads the body into one 1 MiB buffer (`readinto`: with `wire.py` straight from the
socket), finds each part's delimiter with `bytearray.find`, and hands a file part's
bytes to its stream (`upload.SealingTempFile`) as views of that buffer, which the stream
copies once into the chunk it seals. What it returns, and the limits it keeps, are
Werkzeug's: the same `MultiDict`s of fields and `FileStorage`s, `max_form_parts` and
`max_form_memory_size` (413), part headers as Werkzeug reads them, and a body that ends
before its closing delimiter is a `ValueError` (Werkzeug's "Unexpected end of form": the
form is then empty, and the view says what is missing).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import IO, Any

from werkzeug.datastructures import FileStorage, Headers
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.formparser import FormDataParser, MultiPartParser
from werkzeug.http import parse_options_header
from werkzeug.sansio.multipart import File

BUFFER = 2**20
MAX_HEADERS = 16 * 1024  # a part's headers; more is not a form anyone sends
# what may follow a delimiter, besides "--": a line break or its padding, or the body's
# end (the caller then finds it cut short)
_AFTER_A_DELIMITER = frozenset({b"\r", b"\n", b" ", b"\t", b""})


class _Buffer:
    """The body read into one buffer; `start:end` is what is read and not yet taken."""

    def __init__(self, stream: IO[bytes], size: int = BUFFER) -> None:
        self._stream = stream
        self.data = bytearray(size)
        self._view = memoryview(self.data)
        self.start = self.end = 0

    def fill(self) -> bool:
        """More of the body read in (what is left moved to the front first); False at
        its end."""
        if self.start:
            left = self.end - self.start
            self.data[:left] = self.data[self.start : self.end]  # a few bytes at most
            self.start, self.end = 0, left
        if self.end == len(self.data):
            raise RequestEntityTooLarge()  # a part header longer than the buffer
        count = self._stream.readinto(self._view[self.end :]) or 0
        self.end += count
        return count > 0

    def prime(self, data: bytes) -> None:
        self.data[: len(data)] = data
        self.start, self.end = 0, len(data)

    def at_least(self, count: int) -> bool:
        while self.end - self.start < count:
            if not self.fill():
                return False
        return True

    def until(self, separator: bytes, limit: int) -> bytes | None:
        """The bytes before `separator` (both taken), or None if the body ends first."""
        while (found := self.data.find(separator, self.start, self.end)) < 0:
            if self.end - self.start > limit:
                raise RequestEntityTooLarge()
            if not self.fill():
                return None
        if found - self.start > limit:
            raise RequestEntityTooLarge()
        taken = bytes(self.data[self.start : found])
        self.start = found + len(separator)
        return taken

    def skip(self, prefix: bytes) -> bool:
        """Take `prefix` if the unread bytes start with it."""
        if not self.at_least(len(prefix)):
            return False
        if self.data[self.start : self.start + len(prefix)] != prefix:
            return False
        self.start += len(prefix)
        return True

    def pass_until(self, separator: bytes, write: Callable[[memoryview], Any]) -> bool:
        """Every byte before the next delimiter (`separator` followed by `--` or a line
        break, as Werkzeug's parser has it; anything else is data) handed to `write` as
        views of the buffer (valid for the call only), the separator taken; False if the
        body ends first. Only the last `len(separator) - 1` bytes read are held back: they
        may begin a separator."""
        keep = len(separator) - 1
        while True:
            found = self.data.find(separator, self.start, self.end)
            if found < 0:
                safe = self.end - keep
                if safe > self.start:
                    write(self._view[self.start : safe])
                    self.start = safe
                if not self.fill():
                    return False
                continue
            if found > self.start:
                write(self._view[self.start : found])
                self.start = found
            after = found + len(separator)
            if self.end - after < 2 and self.at_least(len(separator) + 2):
                continue  # found again at `start`, with the bytes that tell what it is
            following = bytes(self.data[after : min(after + 2, self.end)])
            if following == b"--" or following[:1] in _AFTER_A_DELIMITER:
                self.start = after
                return True
            write(self._view[found : found + 1])  # not a delimiter: its first byte is data
            self.start = found + 1


def _headers(block: bytes) -> Headers:
    """A part's header lines, read as Werkzeug's decoder reads them."""
    headers = []
    for line in block.splitlines():
        line = line.strip(b" \t")
        if line:
            name, _, value = line.decode().partition(":")
            headers.append((name.strip(" \t"), value.strip(" \t")))
    return Headers(headers)


class StreamingMultiPartParser(MultiPartParser):
    def parse(
        self, stream: IO[bytes], boundary: bytes, content_length: int | None
    ) -> tuple[Any, Any]:
        delimiter = b"\r\n--" + boundary
        body = _Buffer(stream, max(BUFFER, 4 * len(delimiter)))
        body.prime(b"\r\n")  # so the first delimiter looks like every other one
        if not body.pass_until(delimiter, lambda _preamble: None):
            raise ValueError("Missing boundary")
        fields: list[tuple[str, str]] = []
        files: list[tuple[str, FileStorage]] = []
        parts = 0
        while True:
            if not body.at_least(2):
                raise ValueError("Unexpected end of form")
            if body.data[body.start : body.start + 2] == b"--":
                break  # the closing delimiter; the epilogue is ignored
            parts += 1
            if self.max_form_parts is not None and parts > self.max_form_parts:
                raise RequestEntityTooLarge()
            block = body.until(b"\r\n\r\n", MAX_HEADERS)
            if block is None:
                raise ValueError("Unexpected end of form")
            headers = _headers(block)
            # An empty part may end without the CRLF before its delimiter (Werkzeug's own
            # test client sends an empty file so, and Werkzeug's parser takes it).
            ends_at_once = body.skip(delimiter[2:])
            _, extra = parse_options_header(headers.get("content-disposition"))
            name, filename = extra.get("name", ""), extra.get("filename")
            if filename is not None:
                event = File(name=name, filename=filename, headers=headers)
                container = self.start_file_streaming(event, content_length)
                files.append((name, self._file(body, delimiter, container, event, ends_at_once)))
            else:
                fields.append((name, self._field(body, delimiter, headers, ends_at_once)))
        return self.cls(fields), self.cls(files)

    def _file(
        self, body: _Buffer, delimiter: bytes, container: IO[bytes], event: File, empty: bool
    ) -> FileStorage:
        if not empty and not body.pass_until(delimiter, container.write):
            raise ValueError("Unexpected end of form")
        container.seek(0)
        return FileStorage(container, event.filename, event.name, headers=event.headers)

    def _field(self, body: _Buffer, delimiter: bytes, headers: Headers, empty: bool) -> str:
        pieces: list[bytes] = []
        size = 0

        def keep(view: memoryview) -> None:
            nonlocal size
            size += len(view)
            if self.max_form_memory_size is not None and size > self.max_form_memory_size:
                raise RequestEntityTooLarge()
            pieces.append(bytes(view))

        if not empty and not body.pass_until(delimiter, keep):
            raise ValueError("Unexpected end of form")
        return b"".join(pieces).decode(self.get_part_charset(headers), "replace")


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
