"""Credentials never reach a log line: gunicorn's access log and the app's own loggers."""

from __future__ import annotations

import io
import logging
from datetime import timedelta
from types import SimpleNamespace

import pytest

from crm.core.redact import RedactingFilter, RedactingGunicornLogger, install_filter, redact

TOKEN = "eyJyIjo0Mn0.Zm9vYmFy.c2lnbmF0dXJl-_x"
AGENCY_KEY = "crm_ak_1a2b3c4d_s3cr3t_value"


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (f"GET /p/{TOKEN} HTTP/1.1", "GET /p/[redacted] HTTP/1.1"),
        (f"GET /p/{TOKEN}/visa-letter.pdf", "GET /p/[redacted]/visa-letter.pdf"),
        (f"POST /p/{TOKEN}/check-in?done=1", "POST /p/[redacted]/check-in?done=1"),
        (f"GET /unsubscribe/{TOKEN}", "GET /unsubscribe/[redacted]"),
        ("GET /s/Ab3dEf6hJk9m HTTP/1.1", "GET /s/[redacted] HTTP/1.1"),
        (f"Authorization: Bearer {AGENCY_KEY}", "Authorization: Bearer [redacted]"),
        (f"key {AGENCY_KEY} revoked", "key [redacted] revoked"),
        ("GET /x?token=abc&page=2", "GET /x?token=[redacted]&page=2"),
        ("GET /api/v1/referrals/13", "GET /api/v1/referrals/13"),
    ],
)
def test_tokens_and_keys_are_redacted_from_a_line(line, expected):
    assert redact(line) == expected


def _access_line(path: str, query: str = "", headers: dict | None = None, fmt: str = "") -> str:
    """What gunicorn's access log writes for one request, through our logger class."""
    cfg = SimpleNamespace(
        access_log_format=fmt or '%(h)s "%(r)s" %(s)s "%(f)s" "%({authorization}i)s"',
        accesslog="-", errorlog="-", loglevel="info", capture_output=False, syslog=False,
        logconfig=None, logconfig_dict={}, logconfig_json=None,
        disable_redirect_access_to_syslog=False,
        user=0, group=0, umask=0, statsd_host=None, dogstatsd_tags="", statsd_prefix="",
    )  # fmt: skip
    logger = RedactingGunicornLogger(cfg)
    stream = io.StringIO()
    logger.access_log.handlers = [logging.StreamHandler(stream)]
    headers = {"authorization": f"Bearer {AGENCY_KEY}", "referer": f"https://x/p/{TOKEN}"} | (
        headers or {}
    )
    environ = {
        "REQUEST_METHOD": "GET",
        "RAW_URI": path + (f"?{query}" if query else ""),
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_REFERER": headers["referer"],
        "HTTP_AUTHORIZATION": headers["authorization"],
    }
    request = SimpleNamespace(headers=list(headers.items()))
    response = SimpleNamespace(status="200 OK", sent=10, headers=[("Location", path)])
    logger.access(response, request, environ, timedelta(milliseconds=5))
    return stream.getvalue()


def test_the_access_log_writes_the_patients_link_without_its_token():
    line = _access_line(f"/p/{TOKEN}/visa-letter.pdf")
    assert "/p/[redacted]/visa-letter.pdf" in line
    assert TOKEN not in line


def test_the_access_log_writes_an_unsubscribe_link_without_its_token():
    line = _access_line(f"/unsubscribe/{TOKEN}")
    assert "/unsubscribe/[redacted]" in line and TOKEN not in line


def test_the_access_log_never_writes_the_authorization_header_whatever_the_format():
    fmt = '"%(r)s" %({authorization}i)s %({http_authorization}e)s %({location}o)s %(U)s %(q)s'
    line = _access_line(f"/p/{TOKEN}", query=f"token={TOKEN}", fmt=fmt)
    assert AGENCY_KEY not in line and TOKEN not in line
    assert line.count("[redacted]") >= 5


def test_the_gunicorn_config_names_a_redacting_logger_and_no_access_log():
    from pathlib import Path

    from gunicorn.util import load_class

    config: dict = {}
    source = Path(__file__).resolve().parents[2] / "config" / "gunicorn.conf.py"
    exec(compile(source.read_text(), str(source), "exec"), config)  # noqa: S102 - our file
    assert issubclass(load_class(config["logger_class"]), RedactingGunicornLogger)
    assert config["accesslog"] is None  # the app's request line is the access log


def _logged(logger: logging.Logger, *args, exc_info=None) -> str:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter())
    logger.addHandler(handler)
    try:
        logger.warning(*args, exc_info=exc_info)
    finally:
        logger.removeHandler(handler)
    return stream.getvalue()


def test_the_apps_own_log_lines_are_redacted_including_their_arguments():
    text = _logged(logging.getLogger("crm.test"), "link %s for key %s", f"/p/{TOKEN}", AGENCY_KEY)
    assert text.strip() == "link /p/[redacted] for key [redacted]"


def test_a_traceback_in_the_apps_log_is_redacted_too():
    try:
        raise ValueError(f"bad link /p/{TOKEN}")
    except ValueError:
        import sys

        text = _logged(logging.getLogger("crm.test"), "failed", exc_info=sys.exc_info())
    assert TOKEN not in text and "/p/[redacted]" in text


def test_create_app_puts_the_filter_on_the_root_handlers(app):
    root = logging.getLogger()
    install_filter()
    assert all(
        any(isinstance(f, RedactingFilter) for f in handler.filters) for handler in root.handlers
    )
