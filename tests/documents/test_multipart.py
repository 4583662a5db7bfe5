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
