"""The multipart parser that hands file parts on without copying them reads every body as
Werkzeug's does: the same fields and files, the same limits, the same refusals."""

import io
import os

import pytest
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.formparser import FormDataParser
from werkzeug.http import parse_options_header
from werkzeug.test import EnvironBuilder

from crm.documents import multipart
from crm.documents.multipart import StreamingFormDataParser


class Trickle(io.RawIOBase):
    """A body that arrives a few bytes at a time (a delimiter split across reads)."""

    def __init__(self, data: bytes, step: int) -> None:
        self._data, self._at, self._step = data, 0, step

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        piece = self._data[self._at : self._at + min(self._step, len(buffer))]
        memoryview(buffer)[: len(piece)] = piece
        self._at += len(piece)
        return len(piece)


def _body(data) -> tuple[bytes, str, dict]:
    environ = EnvironBuilder(
        method="POST", data=data, content_type="multipart/form-data"
    ).get_environ()
    mimetype, options = parse_options_header(environ["CONTENT_TYPE"])
    return environ["wsgi.input"].read(), mimetype, options


def _in_memory(*_args, **_kwargs) -> io.BytesIO:
    return io.BytesIO()


def _parsed(parser_class, body: bytes, mimetype, options, step: int | None = None, **limits):
    stream = Trickle(body, step) if step else io.BytesIO(body)
    parser = parser_class(stream_factory=_in_memory, silent=False, **limits)
    _, form, files = parser.parse(stream, mimetype, len(body), options)
    read = {}
    for name in files:
        read[name] = [(f.filename, f.mimetype, f.read()) for f in files.getlist(name)]
        for f in files.getlist(name):
            f.close()
    return form.to_dict(flat=False), read


FORMS = [  # made afresh for each use: building a body closes its files
    lambda: {"kind": "passport", "file": (io.BytesIO(b"%PDF-1.4 data"), "passport.pdf")},
    lambda: {"kind": "passport", "file": (io.BytesIO(b""), "empty.pdf")},
    lambda: {"kind": "", "file": (io.BytesIO(b""), "")},
    lambda: {"note": "çok güzel, €", "many": ["a", "b", "c"]},
    lambda: {
        "a": "1",
        "first": (io.BytesIO(b"\r\n--\r\n\r\n" * 3000), "lines.bin"),
        "second": (io.BytesIO(os.urandom(70_000)), "random.bin", "image/png"),
    },
]


@pytest.mark.parametrize("data", FORMS, ids=range(len(FORMS)))
@pytest.mark.parametrize("step", [None, 1, 7, 4096])
def test_a_body_reads_as_werkzeug_reads_it_however_it_arrives(data, step):
    body, mimetype, options = _body(data())
    expected = _parsed(FormDataParser, body, mimetype, options)
    assert _parsed(StreamingFormDataParser, body, mimetype, options, step) == expected


@pytest.mark.parametrize("step", [None, 3])
def test_what_is_almost_a_delimiter_is_data(step):
    """A delimiter cut short, or followed by anything but `--` or a line break, is data
    (as Werkzeug reads it)."""
    boundary = b"----------almost"
    tricky = b"\r\n--" + boundary[:-1] + b"\r\n--" + boundary + b"X\r\n--" + boundary[:5]
    body = (
        b"--" + boundary + b'\r\nContent-Disposition: form-data; name="x"; filename="x.bin"'
        b"\r\n\r\n" + tricky + b"\r\n--" + boundary + b"--\r\n"
    )
    options = {"boundary": boundary.decode()}
    expected = _parsed(FormDataParser, body, "multipart/form-data", options)
    assert expected[1]["x"][0][2] == tricky
    assert _parsed(StreamingFormDataParser, body, "multipart/form-data", options, step) == expected


def test_a_preamble_and_an_epilogue_are_ignored():
    body, mimetype, options = _body({"kind": "passport"})
    body = b"this is a preamble" + body + b"and an epilogue"
    assert _parsed(StreamingFormDataParser, body, mimetype, options) == (
        {"kind": ["passport"]},
        {},
    )


def test_a_body_cut_short_is_refused_as_werkzeug_refuses_it():
    body, mimetype, options = _body({"file": (io.BytesIO(b"x" * 5000), "x.bin")})
    for parser_class in (FormDataParser, StreamingFormDataParser):
        with pytest.raises(ValueError):
            _parsed(parser_class, body[:3000], mimetype, options)


def test_the_form_limits_are_werkzeugs(monkeypatch):
    body, mimetype, options = _body({"a": "1", "b": "2", "c": "3"})
    with pytest.raises(RequestEntityTooLarge):
        _parsed(StreamingFormDataParser, body, mimetype, options, max_form_parts=2)
    body, mimetype, options = _body({"a": "x" * 5000})
    with pytest.raises(RequestEntityTooLarge):
        _parsed(StreamingFormDataParser, body, mimetype, options, max_form_memory_size=1000)
    monkeypatch.setattr(multipart, "MAX_HEADERS", 100)
    body, mimetype, options = _body({"a": (io.BytesIO(b"1"), "n" * 300 + ".bin")})
    with pytest.raises(RequestEntityTooLarge):
        _parsed(StreamingFormDataParser, body, mimetype, options)


def _raw_body(boundary: bytes, *parts: bytes, preamble: bytes = b"") -> bytes:
    return (
        preamble
        + b"".join(b"--" + boundary + b"\r\n" + p for p in parts)
        + (b"--" + boundary + b"--\r\n")
    )


@pytest.mark.parametrize("step", [None, 5, 4096])
def test_parts_with_no_body_read_as_werkzeug_reads_them(monkeypatch, step):
    """RFC 2046 lets a part end after its headers (the CRLF after them is the delimiter's,
    as Werkzeug's test client writes an empty field or file): python-multipart alone would
    read the next part as this one's data. Many of them, then parts whose first bytes
    begin like a delimiter, and a file longer than the buffer."""
    monkeypatch.setattr(multipart, "BUFFER", 4096)
    boundary = b"nobody-b0undary"
    empty_field = b'Content-Disposition: form-data; name="empty"\r\n\r\n'
    empty_file = b'Content-Disposition: form-data; name="f"; filename="e.bin"\r\n\r\n'
    parts = [empty_field, empty_file] * 150 + [
        b'Content-Disposition: form-data; name="almost"\r\n\r\n--' + boundary[:6] + b"\r\n",
        b'Content-Disposition: form-data; name="dash"\r\n\r\n-\r\n',
        b'Content-Disposition: form-data; name="big"; filename="b.bin"\r\n\r\n'
        + b"--"
        + boundary[:-1]
        + os.urandom(20_000)
        + b"\r\n",
        empty_file,
    ]
    body = _raw_body(boundary, *parts)
    options = {"boundary": boundary.decode()}
    expected = _parsed(FormDataParser, body, "multipart/form-data", options)
    assert len(expected[0]["empty"]) == 150 and len(expected[1]["f"]) == 151
    assert expected[0]["almost"] == ["--" + boundary[:6].decode()]
    assert _parsed(StreamingFormDataParser, body, "multipart/form-data", options, step) == expected


@pytest.mark.parametrize("step", [None, 9])
def test_a_preamble_longer_than_the_buffer_is_ignored(monkeypatch, step):
    """The first delimiter is looked for across reads of the buffer; what only looks like
    one (followed by neither `--` nor a line break) is preamble, as Werkzeug reads it."""
    monkeypatch.setattr(multipart, "BUFFER", 4096)
    boundary = b"preamble-boundary"
    filler = b"x" * 4070 + b"\r\n--" + boundary + b"X" + b"y" * 5000
    body = _raw_body(
        boundary,
        b'Content-Disposition: form-data; name="kind"\r\n\r\npassport\r\n',
        preamble=filler + b"\r\n",
    )
    options = {"boundary": boundary.decode()}
    expected = _parsed(FormDataParser, body, "multipart/form-data", options)
    assert expected == ({"kind": ["passport"]}, {})
    assert _parsed(StreamingFormDataParser, body, "multipart/form-data", options, step) == expected


@pytest.mark.parametrize("cut", [10, 60, 90])
def test_a_body_cut_in_its_headers_is_refused(cut):
    body, mimetype, options = _body({"kind": "passport"})
    for parser_class in (FormDataParser, StreamingFormDataParser):
        with pytest.raises(ValueError):
            _parsed(parser_class, body[:cut], mimetype, options)


@pytest.mark.parametrize("step", [None, 2])
def test_padding_after_a_delimiter_is_taken(step):
    """RFC 2046: spaces or tabs may follow a delimiter before its line break (the first
    one included, which python-multipart alone refuses)."""
    boundary = b"padded"
    body = (
        b"--padded \t\r\n"
        b'Content-Disposition: form-data; name="a"\r\n\r\n1\r\n'
        b"--padded  \r\n"
        b'Content-Disposition: form-data; name="f"; filename="f.bin"\r\n\r\n2\r\n'
        b"--padded--\r\n"
    )
    options = {"boundary": boundary.decode()}
    expected = _parsed(FormDataParser, body, "multipart/form-data", options)
    assert expected == ({"a": ["1"]}, {"f": [("f.bin", "", b"2")]})
    assert _parsed(StreamingFormDataParser, body, "multipart/form-data", options, step) == expected
