"""Structured logs: one JSON object a line, with the request it belongs to.

Each line carries the time (UTC), level, logger and message, and inside a request its id,
method, route (the URL rule, `/p/<token>` as a pattern, never the token), the actor's kind
and id once known; the request's own line adds the status and duration. What reaches a
line passes `crm.core.redact` first (tokens, keys, full phone numbers). Health details are
never logged: code logs ids, not texts. CRM_LOG_FORMAT=text gives the old plain lines.

Under gunicorn (config/gunicorn.conf.py) its own lines are the same JSON
(`JsonGunicornLogger`), it writes no access log of its own (the request line here is the
access log), and a request cut off by a worker timeout still gets its line
(`request_cut_off`, gunicorn's worker_abort hook).
"""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime
from typing import Any

from flask import Flask, Response, has_request_context, request

from crm.config import ConfigError, load_config
from crm.core.redact import RedactingFilter, RedactingGunicornLogger

log = logging.getLogger("crm.request")
# The request fields a line may carry, in the order they are written.
REQUEST_FIELDS = (
    "request_id",
    "method",
    "route",
    "actor_kind",
    "actor_id",
    "status",
    "duration_ms",
)
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


class RequestContextFilter(logging.Filter):
    """Adds this request's id, method, route and actor to every record made inside it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if has_request_context():
            for name, value in request_fields().items():
                if not hasattr(record, name):
                    setattr(record, name, value)
        return True


def request_fields() -> dict[str, Any]:
    environ = request.environ
    actor = environ.get("crm.actor")
    fields: dict[str, Any] = {
        "request_id": environ.get("crm.request_id"),
        "method": request.method,
        "route": request.url_rule.rule if request.url_rule is not None else None,
    }
    if actor is not None:
        fields["actor_kind"], fields["actor_id"] = actor.kind, actor.id
    return fields


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in REQUEST_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                line[name] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = record.stack_info
        return json.dumps(line, ensure_ascii=False, default=str)


def configure(level: str, style: str) -> None:
    """The root logger: one stream handler, JSON or text, redacting, request-aware."""
    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(logging.StreamHandler())
    root.setLevel(level)
    for handler in root.handlers:
        dress(handler, style, formatter=type(handler) is logging.StreamHandler)
    logging.captureWarnings(True)  # a library's warning is a line like the others, not text
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    # APScheduler says "Running job"/"executed successfully" for every tick (the webhooks'
    # every 2 s); a failing job is logged by crm.scheduler.jobs itself, with its traceback.
    logging.getLogger("apscheduler.executors").setLevel(logging.WARNING)


def dress(handler: logging.Handler, style: str, *, formatter: bool = True) -> None:
    """Request fields and redaction on a handler (once), and the line format (unless it is
    another's handler, such as a test's capture)."""
    if formatter:
        handler.setFormatter(JsonFormatter() if style == "json" else logging.Formatter(TEXT_FORMAT))
    if not any(isinstance(f, RequestContextFilter) for f in handler.filters):
        handler.addFilter(RequestContextFilter())
    if not any(isinstance(f, RedactingFilter) for f in handler.filters):
        # no token, key, full phone number or Authorization header in any line
        handler.addFilter(RedactingFilter())


def _start_clock() -> None:
    request.environ["crm.started"] = time.perf_counter()


def _log_request(response: Response) -> Response:
    started = request.environ.get("crm.started")
    duration = round((time.perf_counter() - started) * 1000, 1) if started else None
    log.info(
        "request",
        extra={"status": response.status_code, "duration_ms": duration},
    )
    return response


def register(app: Flask) -> None:
    """A line per request, with its status and duration (after the commit: it is the
    request's last word)."""
    app.before_request(_start_clock)
    app.after_request(_log_request)


def request_cut_off() -> None:
    """gunicorn's worker_abort hook: the master aborts (SIGABRT) a worker past `--timeout`
    and the request it was serving never reaches `_log_request`. The hook runs in the
    worker's signal handler, on top of the stuck request's own stack and context, so its
    line has the request's fields, the time it had taken and where it was stuck."""
    if not has_request_context():
        log.error("worker aborted between requests (gunicorn timeout)")
        return
    started = request.environ.get("crm.started")
    duration = round((time.perf_counter() - started) * 1000, 1) if started else None
    log.error(
        "request cut off: the worker was aborted (gunicorn timeout)",
        extra={"duration_ms": duration},
        stack_info=True,
    )


class JsonGunicornLogger(RedactingGunicornLogger):
    """gunicorn's own lines (starting, booting a worker, a worker timeout, an error handling
    a request) in the app's format, redacted; and no access log, whatever the command line
    says: the app's `request` line is the access log (with the request id, route, actor)."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        try:
            settings = load_config()
            level, style = settings["LOG_LEVEL"], settings["LOG_FORMAT"]
        except ConfigError:  # the worker's create_app will say what is wrong, in JSON
            level, style = "INFO", "json"
        configure(level, style)  # the master's root logger too (warnings, libraries)
        for handler in self.error_log.handlers:
            if getattr(handler, "_gunicorn", False):  # the one gunicorn made, not a syslog's
                dress(handler, style)

    def access(self, resp: Any, req: Any, environ: dict, request_time: Any) -> None:
        return None
