"""Structured logs: a JSON line per request with its id, route, actor, status and
duration; no token and no full phone number in any line."""

from __future__ import annotations

import json
import logging

import pytest

from crm.config import ConfigError, load_config
from crm.core import logs
from tests.factories import referral_payload
from tests.helpers import API


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def json_lines():
    handler = Lines()
    logs.dress(handler, "json")
    root, request_log = logging.getLogger(), logging.getLogger("crm.request")
    # Alembic's logging file (the test database's migrations) leaves the root at WARNING.
    level, disabled = root.level, request_log.disabled
    root.setLevel(logging.INFO)
    request_log.disabled = False
    root.addHandler(handler)
    try:
        yield handler.lines
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
        request_log.disabled = disabled


def _parsed(lines: list[str], message: str) -> list[dict]:
    return [line for line in map(json.loads, lines) if line["message"] == message]


def test_a_request_writes_one_json_line_with_its_route_actor_status_and_duration(
    client, factory, json_lines
):
    agency = factory.agency()
    response = client.post(
        f"{API}/referrals",
        json=referral_payload(),
        headers=agency.headers(**{"X-Request-ID": "trace-7"}),
    )
    assert response.status_code == 201
    [line] = _parsed(json_lines, "request")
    assert line["request_id"] == "trace-7"
    assert (line["method"], line["route"]) == ("POST", "/api/v1/referrals")
    assert (line["actor_kind"], line["actor_id"]) == ("agency", agency.actor.id)
    assert line["status"] == 201
    assert line["duration_ms"] >= 0
    assert line["level"] == "INFO" and line["logger"] == "crm.request"
    assert line["ts"].endswith("+00:00")


def test_a_patient_link_is_logged_as_its_route_never_its_token(client, json_lines):
    client.get("/p/not-a-real-token-but-secret-looking")
    [line] = _parsed(json_lines, "request")
    assert "not-a-real-token" not in json.dumps(line)
    assert "<" in line["route"]  # the URL rule's pattern, e.g. /p/<token>


def test_a_full_phone_number_never_reaches_a_line(app, json_lines):
    with app.test_request_context("/"):
        logging.getLogger("crm.test").warning("could not reach %s", "+905321234567")
    [line] = _parsed(json_lines, "could not reach +…67")
    assert "5321234" not in json.dumps(line)


def test_a_line_outside_a_request_has_no_request_fields(json_lines):
    logging.getLogger("crm.test").info("sweep done")
    [line] = _parsed(json_lines, "sweep done")
    assert set(line) == {"ts", "level", "logger", "message"}


def test_an_exception_is_one_line_with_its_traceback(json_lines):
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logging.getLogger("crm.test").exception("job failed")
    [line] = _parsed(json_lines, "job failed")
    assert "RuntimeError: boom" in line["exception"]


def test_an_unknown_log_format_stops_the_app_naming_the_setting():
    with pytest.raises(ConfigError, match="LOG_FORMAT"):
        load_config(environ={"CRM_LOG_FORMAT": "xml"})


@pytest.fixture
def gunicorn_logger():
    from types import SimpleNamespace

    cfg = SimpleNamespace(
        accesslog=None, errorlog="-", loglevel="info", capture_output=False, syslog=False,
        logconfig=None, logconfig_dict={}, logconfig_json=None,
        disable_redirect_access_to_syslog=False, access_log_format="%(r)s",
        user=0, group=0, umask=0, statsd_host=None, dogstatsd_tags="", statsd_prefix="",
    )  # fmt: skip
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    try:
        yield logs.JsonGunicornLogger(cfg)
    finally:
        root.setLevel(level)
        for handler in root.handlers[len(handlers) :]:
            root.removeHandler(handler)


def test_gunicorns_own_lines_are_json_and_redacted(gunicorn_logger):
    import io

    [handler] = [h for h in gunicorn_logger.error_log.handlers if getattr(h, "_gunicorn", False)]
    stream = io.StringIO()
    handler.setStream(stream)
    gunicorn_logger.critical("WORKER TIMEOUT (pid:%s)", 42)
    gunicorn_logger.error("Error handling request /p/%s", "secret-link-token")
    first, second = map(json.loads, stream.getvalue().splitlines())
    assert first["message"] == "WORKER TIMEOUT (pid:42)" and first["level"] == "CRITICAL"
    assert first["logger"] == "gunicorn.error"
    assert second["message"] == "Error handling request /p/[redacted]"


def test_gunicorn_writes_no_access_log_of_its_own(gunicorn_logger):
    from datetime import timedelta
    from types import SimpleNamespace

    written = Lines()
    gunicorn_logger.access_log.addHandler(written)
    try:
        gunicorn_logger.access(
            SimpleNamespace(status="200 OK", sent=2, headers=[]),
            SimpleNamespace(headers=[]),
            {"REQUEST_METHOD": "GET", "RAW_URI": "/", "SERVER_PROTOCOL": "HTTP/1.1"},
            timedelta(milliseconds=1),
        )
    finally:
        gunicorn_logger.access_log.removeHandler(written)
    assert written.lines == []
