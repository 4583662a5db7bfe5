"""A fake Twilio REST API on 127.0.0.1 for tests and benchmarks; it never leaves the machine.

It implements the part of the 2010-04-01 API that the messaging engine uses:
- ``POST /2010-04-01/Accounts/{AccountSid}/Messages.json`` (form: To, From or
  MessagingServiceSid, Body, StatusCallback) -> 201 and a Message resource (``SM...``);
  WhatsApp as Twilio takes it: ``To``/``From`` written ``whatsapp:+E164`` (both ends on
  the same channel, else 21910), and instead of a Body an approved template by
  ``ContentSid`` (``HX`` + 32 hex, else 21655) with ``ContentVariables`` (a JSON object of
  strings, else 21656), each recorded with the message;
- ``GET  /2010-04-01/Accounts/{AccountSid}/Messages.json`` with ``To``, ``From``,
  ``DateSent``, ``DateSent>``, ``DateSent<``, ``PageSize``, ``Page`` -> a list page in
  the 2010 format (``messages``, ``next_page_uri``, ...) that the SDK pages through;
- ``GET  /2010-04-01/Accounts/{AccountSid}/Messages/{Sid}.json``.

Every request is recorded (``requests``); every accepted message is stored
(``messages``). ``program(...)`` makes the next matching requests fail with an HTTP
status and a Twilio error code in Twilio's error JSON, and/or wait before answering.
A delayed 2xx still creates the message: the client times out although Twilio
accepted it, the case reconciliation exists for.

Pointing the official SDK (twilio 9.x) at it: the SDK builds absolute URLs from
``https://api.twilio.com`` and hands them to its ``HttpClient``; the supported seam
is a custom http client, so ``crm.messaging.delivery.sms.RebasingHttpClient`` (a
``TwilioHttpClient`` subclass) rewrites ``https://*.twilio.com`` to this server's
``base_url`` and refuses any other host. Use
``TwilioGateway(..., base_url=fake.base_url)`` or
``Client(sid, token, http_client=RebasingHttpClient(fake.base_url))``.
"""

from __future__ import annotations

import base64
import json
import operator
import re
import socket
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

API = "/2010-04-01"
TEST_ACCOUNT_SID = "AC" + "0" * 32
TEST_AUTH_TOKEN = "test-token"  # a fake server's token, not a secret
_LIST_RE = re.compile(r"^/2010-04-01/Accounts/(AC\w+)/Messages\.json$")
_ONE_RE = re.compile(r"^/2010-04-01/Accounts/(AC\w+)/Messages/(SM\w+)\.json$")
_E164_RE = re.compile(r"^(whatsapp:)?\+[1-9]\d{7,14}$")
_CONTENT_SID_RE = re.compile(r"^HX[0-9a-f]{32}$")
WHATSAPP = "whatsapp:"

ERROR_MESSAGES = {
    20003: "Authenticate",
    20404: "The requested resource was not found",
    20429: "Too Many Requests",
    20500: "An internal server error has occurred",
    21211: "The 'To' number is not a valid phone number.",
    21602: "Message body is required.",
    21603: "The 'From' number or MessagingServiceSid is required.",
    21604: "A 'To' phone number is required.",
    21610: "Attempt to send to unsubscribed recipient",
    21614: "'To' number is not a valid mobile number",
    21655: "The ContentSid is Invalid",
    21656: "The ContentVariables Parameter is invalid",
    21910: "Invalid From and To pair. From and To should be of the same channel",
}


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    form: dict[str, str]
    username: str | None
    at: datetime


@dataclass
class Rule:
    """Answer the next ``times`` matching requests with ``status``/``code`` after ``delay``.

    ``status=None`` keeps the normal answer (useful for a pure delay). ``times=None``
    means every matching request. ``to`` restricts the rule to one recipient.
    """

    status: int | None = None
    code: int | None = None
    delay: float = 0.0
    times: int | None = 1
    method: str = "POST"
    to: str | None = None

    def matches(self, method: str, form: dict[str, str]) -> bool:
        if self.times == 0 or method != self.method:
            return False
        return self.to is None or form.get("To") == self.to


@dataclass
class FakeTwilio:
    """State of the fake: accounts' messages, recorded requests, programmed rules."""

    account_sid: str = TEST_ACCOUNT_SID
    auth_token: str | None = TEST_AUTH_TOKEN
    messages: list[dict[str, Any]] = field(default_factory=list)
    requests: list[RecordedRequest] = field(default_factory=list)
    rules: list[Rule] = field(default_factory=list)
    base_url: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def program(self, **kwargs: Any) -> Rule:
        """Add a :class:`Rule` (see its fields); rules are tried in the order added."""
        rule = Rule(**kwargs)
        with self.lock:
            self.rules.append(rule)
        return rule

    def sent_to(self, to: str) -> list[dict[str, Any]]:
        with self.lock:
            return [m for m in self.messages if m["to"] == to]

    def whatsapp_to(self, number: str) -> list[dict[str, Any]]:
        """WhatsApp messages to an E.164 number (Twilio's ``whatsapp:+...``)."""
        return self.sent_to(WHATSAPP + number)

    def posts(self) -> list[RecordedRequest]:
        with self.lock:
            return [r for r in self.requests if r.method == "POST"]

    def take_rule(self, method: str, form: dict[str, str]) -> Rule | None:
        with self.lock:
            for rule in self.rules:
                if rule.matches(method, form):
                    if rule.times is not None:
                        rule.times -= 1
                    return rule
        return None


def error_body(status: int, code: int, message: str | None = None) -> dict[str, Any]:
    """Twilio's REST error JSON."""
    return {
        "code": code,
        "message": message or ERROR_MESSAGES.get(code, "Error"),
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


def _rfc2822(value: datetime | None) -> str | None:
    return format_datetime(value, usegmt=True) if value else None


def _message_json(msg: dict[str, Any], *, fresh: bool) -> dict[str, Any]:
    """The Message resource; a fresh create answers queued/accepted, unsent."""
    uri = f"{API}/Accounts/{msg['account_sid']}/Messages/{msg['sid']}.json"
    status = ("accepted" if msg["messaging_service_sid"] else "queued") if fresh else "sent"
    return {
        "account_sid": msg["account_sid"],
        "api_version": "2010-04-01",
        "body": msg["body"],
        "date_created": _rfc2822(msg["date_created"]),
        "date_sent": None if fresh else _rfc2822(msg["date_sent"]),
        "date_updated": _rfc2822(msg["date_created"]),
        "direction": "outbound-api",
        "error_code": None,
        "error_message": None,
        "from": msg["from"],
        "messaging_service_sid": msg["messaging_service_sid"],
        "num_media": "0",
        "num_segments": "1",
        "price": None,
        "price_unit": "USD",
        "sid": msg["sid"],
        "status": status,
        "subresource_uris": {"media": uri.replace(".json", "/Media.json")},
        "to": msg["to"],
        "uri": uri,
    }


def _content_variables_ok(raw: str | None) -> bool:
    if raw is None:
        return True
    try:
        value = json.loads(raw)
    except ValueError:
        return False
    return isinstance(value, dict) and all(isinstance(v, str) for v in value.values())


def _validate_create(form: dict[str, str]) -> int | None:
    if not form.get("To"):
        return 21604
    if not _E164_RE.match(form["To"]):
        return 21211
    if form.get("ContentSid"):
        if not _CONTENT_SID_RE.match(form["ContentSid"]):
            return 21655
        if not _content_variables_ok(form.get("ContentVariables")):
            return 21656
    elif not form.get("Body"):
        return 21602
    if not (form.get("From") or form.get("MessagingServiceSid")):
        return 21603
    to_whatsapp = form["To"].startswith(WHATSAPP)
    if form.get("From") and form["From"].startswith(WHATSAPP) != to_whatsapp:
        return 21910
    return None


def _parse_when(value: str) -> datetime | date:
    if "T" in value:
        return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    return date.fromisoformat(value)


_DATE_FILTERS = (("DateSent>", operator.ge), ("DateSent<", operator.le), ("DateSent", operator.eq))


def _date_ok(sent: datetime, query: dict[str, str]) -> bool:
    """``DateSent>`` means on or after, ``DateSent<`` on or before (day or second)."""
    for key, op in (
        ("DateSent>", operator.ge),
        ("DateSent<", operator.le),
        ("DateSent", operator.eq),
    ):
        if key in query:
            bound = _parse_when(query[key])
            value = sent if isinstance(bound, datetime) else sent.date()
            if not op(value, bound):
                return False
    return True


def _filter(messages: list[dict[str, Any]], query: dict[str, str]) -> list[dict[str, Any]]:
    """Messages matching the list filters, newest first (as Twilio lists them)."""
    found = [
        m
        for m in messages
        if (not query.get("To") or m["to"] == query["To"])
        and (not query.get("From") or m["from"] == query["From"])
        and _date_ok(m["date_sent"], query)
    ]
    return sorted(found, key=lambda m: m["date_sent"], reverse=True)


def _list_page(state: FakeTwilio, path: str, query: dict[str, str]) -> dict[str, Any]:
    with state.lock:
        found = _filter(state.messages, query)
    size = min(int(query.get("PageSize", 50)), 1000)
    page = int(query.get("Page", 0))
    chunk = found[page * size : (page + 1) * size]
    filters = {k: v for k, v in query.items() if k not in {"Page", "PageSize", "PageToken"}}

    def uri(number: int) -> str:
        params = {**filters, "PageSize": size, "Page": number, "PageToken": f"PA{number}"}
        return f"{path}?{urlencode(params)}"

    more = (page + 1) * size < len(found)
    return {
        "messages": [_message_json(m, fresh=False) for m in chunk],
        "end": page * size + max(len(chunk) - 1, 0),
        "first_page_uri": uri(0),
        "next_page_uri": uri(page + 1) if more else None,
        "page": page,
        "page_size": size,
        "previous_page_uri": uri(page - 1) if page > 0 else None,
        "start": page * size,
        "uri": uri(page),
    }


def _create(state: FakeTwilio, account: str, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
    code = _validate_create(form)
    if code is not None:
        return 400, error_body(400, code)
    now = datetime.now(UTC).replace(microsecond=0)
    msg = {
        "sid": "SM" + uuid.uuid4().hex,
        "account_sid": account,
        "to": form["To"],
        "from": form.get("From") or None,
        "messaging_service_sid": form.get("MessagingServiceSid") or None,
        "body": form.get("Body", ""),
        "content_sid": form.get("ContentSid"),
        "content_variables": (
            json.loads(form["ContentVariables"]) if form.get("ContentVariables") else None
        ),
        "status_callback": form.get("StatusCallback"),
        "date_created": now,
        "date_sent": now,
    }
    with state.lock:
        state.messages.append(msg)
    return 201, _message_json(msg, fresh=True)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        """No Nagle delay: headers and body go out in two writes on a kept-alive socket."""
        super().setup()
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the default stderr access log."""

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def _handle(self, method: str) -> None:
        state = self.server.state
        parts = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode() if length else ""
        form = {k: v[-1] for k, v in parse_qs(raw).items()}
        user = self._check_auth(state)
        with state.lock:
            state.requests.append(
                RecordedRequest(method, parts.path, query, form, user, datetime.now(UTC))
            )
        rule = state.take_rule(method, form)
        if rule and rule.delay:
            time.sleep(rule.delay)
        if rule and rule.status is not None:
            code = rule.code or {429: 20429, 500: 20500}.get(rule.status, rule.status)
            return self._reply(rule.status, error_body(rule.status, code))
        if user is None:
            return self._reply(401, error_body(401, 20003))
        self._reply(*self._route(state, method, parts.path, query, form))

    def _route(
        self, state: FakeTwilio, method: str, path: str, query: dict[str, str], form: dict[str, str]
    ) -> tuple[int, dict[str, Any]]:
        if (m := _LIST_RE.match(path)) and m.group(1) == state.account_sid:
            if method == "POST":
                return _create(state, m.group(1), form)
            return 200, _list_page(state, path, query)
        if (m := _ONE_RE.match(path)) and m.group(1) == state.account_sid and method == "GET":
            with state.lock:
                found = [x for x in state.messages if x["sid"] == m.group(2)]
            if found:
                return 200, _message_json(found[0], fresh=False)
        return 404, error_body(404, 20404)

    def _check_auth(self, state: FakeTwilio) -> str | None:
        """The Basic-auth username when it is the account and the token matches."""
        header = self.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return None
        user, _, token = base64.b64decode(header[6:]).decode().partition(":")
        if user != state.account_sid:
            return None
        return user if state.auth_token is None or token == state.auth_token else None

    def _reply(self, status: int, payload: dict[str, Any]) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, state: FakeTwilio) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.state = state

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client killed mid-request (the crash tests do it on purpose) is not an error."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


@contextmanager
def running_fake_twilio(
    account_sid: str = TEST_ACCOUNT_SID, auth_token: str | None = TEST_AUTH_TOKEN
) -> Iterator[FakeTwilio]:
    """Start the fake on a free port of 127.0.0.1 in a thread; stop it on exit."""
    state = FakeTwilio(account_sid=account_sid, auth_token=auth_token)
    server = _Server(state)
    state.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-twilio", daemon=True
    )
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
