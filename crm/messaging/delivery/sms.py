"""SMS and WhatsApp gateways: Twilio through the official SDK, and a file transport for
development. A WhatsApp gateway is the same class addressing ``whatsapp:+E164`` on both
ends; it may send an approved template by Content SID instead of a body.

``SmsGateway`` is what a dispatcher needs: ``send`` (one provider call, classified
errors) and ``messages_to`` (the provider's own record, to reconcile a message whose
sender crashed between "sending" and "sent": Twilio has no idempotency key).

Errors are split by what a dispatcher should do next:
- :class:`TransientSmsError`: retry later with backoff (timeouts, connection errors,
  5xx, 429, and 401/403: bad credentials are the operator's fault, not the
  message's, and the message should go out once they are fixed);
- :class:`PermanentSmsError`: never retry; ``opted_out`` (21610), ``invalid_number``
  (21211) and ``not_mobile`` (21614) tell it what to record about the recipient.
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import requests
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

log = logging.getLogger(__name__)

OPTED_OUT, INVALID_NUMBER, NOT_MOBILE = 21610, 21211, 21614
RECONCILE_SKEW = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class ProviderResult:
    provider_id: str
    status: str


@dataclass(frozen=True, slots=True)
class ProviderMessage:
    """A message as the provider recorded it (for reconciliation)."""

    provider_id: str
    to: str
    body: str
    status: str
    created_at: datetime | None


class SmsError(Exception):
    """A send failed; ``status`` is the HTTP status, ``code`` the provider's error code."""

    transient = False

    def __init__(self, message: str, *, status: int | None = None, code: int | None = None):
        super().__init__(message)
        self.status = status
        self.code = code


class TransientSmsError(SmsError):
    transient = True


class PermanentSmsError(SmsError):
    @property
    def opted_out(self) -> bool:
        return self.code == OPTED_OUT

    @property
    def invalid_number(self) -> bool:
        return self.code == INVALID_NUMBER

    @property
    def not_mobile(self) -> bool:
        return self.code == NOT_MOBILE


class SmsGateway(Protocol):
    def send(
        self,
        to: str,
        body: str,
        status_callback: str | None = None,
        *,
        content_sid: str | None = None,
        content_variables: str | None = None,
    ) -> ProviderResult:
        """Hand one message to the provider; raise :class:`SmsError` on failure.

        With ``content_sid`` (WhatsApp) the approved template goes, filled with
        ``content_variables`` (JSON), instead of ``body``."""
        ...

    def messages_to(self, to: str, since: datetime) -> list[ProviderMessage]:
        """Messages the provider holds for ``to`` created at or after ``since``."""
        ...


def mask_phone(number: str) -> str:
    """``+905321234567`` -> ``+90*******67``: enough to tell numbers apart in a log."""
    digits = number.strip()
    if len(digits) <= 5:
        return "*" * len(digits)
    return digits[:3] + "*" * (len(digits) - 5) + digits[-2:]


def classify_error(exc: Exception) -> SmsError:
    """Turn an SDK or transport exception into a transient or permanent :class:`SmsError`."""
    if isinstance(exc, TwilioRestException):
        status, code = exc.status, _int_or_none(exc.code)
        message = f"twilio {status} code {code}: {exc.msg}"
        if status >= 500 or status in (401, 403, 408, 429):
            return TransientSmsError(message, status=status, code=code)
        return PermanentSmsError(message, status=status, code=code)
    if isinstance(exc, requests.RequestException | TwilioException | OSError):
        return TransientSmsError(f"transport error: {type(exc).__name__}")
    raise exc


def _int_or_none(value: object) -> int | None:
    try:
        return int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return None


class RebasingHttpClient(TwilioHttpClient):
    """A ``TwilioHttpClient`` that sends ``https://*.twilio.com/...`` to ``base_url``.

    twilio 9.x composes absolute URLs from the domain's ``base_url``
    (``https://api.twilio.com``) and hands them to its ``http_client``; replacing the
    scheme and host here covers every domain and the ``next_page_uri`` of list pages.
    Any host that is not Twilio's is refused, and proxies from the environment are
    ignored, so a test can never reach an outside host.
    """

    def __init__(self, base_url: str, timeout: float | None = None) -> None:
        super().__init__(timeout=timeout)
        self.base_url = base_url.rstrip("/")
        if self.session is not None:
            self.session.trust_env = False

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Response:
        parts = urlsplit(url)
        if not (parts.hostname or "").endswith("twilio.com"):
            raise ValueError(f"refusing to call a non-Twilio host: {parts.hostname}")
        rebased = self.base_url + parts.path + (f"?{parts.query}" if parts.query else "")
        return super().request(method, rebased, *args, **kwargs)

    def close(self) -> None:
        if self.session is not None:
            self.session.close()


class TwilioGateway:
    """Send through the official SDK with a Messaging Service SID or a From number."""

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        *,
        messaging_service_sid: str | None = None,
        from_number: str | None = None,
        timeout: float = 10.0,
        base_url: str | None = None,
        address_prefix: str = "",
    ) -> None:
        if not (messaging_service_sid or from_number):
            raise ValueError("a Messaging Service SID or a From number is required")
        self.messaging_service_sid = messaging_service_sid
        self.address_prefix = address_prefix  # "whatsapp:" for WhatsApp
        self.from_number = address_prefix + from_number if from_number else None
        self._http = (
            RebasingHttpClient(base_url, timeout=timeout)
            if base_url
            else TwilioHttpClient(timeout=timeout)
        )
        self._client = Client(account_sid, auth_token, http_client=self._http)
        # The account's message list, looked up once: `Client.messages` walks three lazy
        # properties at every call (about 1% of a send's CPU in the dispatch benchmark).
        self._messages = self._client.messages

    def send(
        self,
        to: str,
        body: str,
        status_callback: str | None = None,
        *,
        content_sid: str | None = None,
        content_variables: str | None = None,
    ) -> ProviderResult:
        sender: dict[str, str] = (
            {"messaging_service_sid": self.messaging_service_sid}
            if self.messaging_service_sid
            else {"from_": self.from_number or ""}
        )
        if status_callback:
            sender["status_callback"] = status_callback
        if content_sid:
            sender["content_sid"] = content_sid
            sender["content_variables"] = content_variables or "{}"
        else:
            sender["body"] = body
        try:
            message = self._messages.create(to=self.address_prefix + to, **sender)
        except Exception as exc:  # classify_error re-raises what it does not know
            raise classify_error(exc) from exc
        return ProviderResult(provider_id=str(message.sid), status=str(message.status))

    def messages_to(self, to: str, since: datetime) -> list[ProviderMessage]:
        """Provider messages to ``to`` created at or after ``since`` (minus clock skew).

        Twilio filters ``DateSent>`` by day, so the list is asked for from the day
        before (time zones) and narrowed here by creation time.
        """
        start = since - RECONCILE_SKEW
        day = (start - timedelta(days=1)).strftime("%Y-%m-%d")
        try:
            found = self._messages.list(
                to=self.address_prefix + to, date_sent_after=day, page_size=100
            )
        except Exception as exc:
            raise classify_error(exc) from exc
        return [
            ProviderMessage(str(m.sid), str(m.to), str(m.body), str(m.status), m.date_created)
            for m in found
            if m.date_created is None or m.date_created >= start
        ]

    def close(self) -> None:
        session = getattr(self._http, "session", None)
        if session is not None:
            session.close()

    def __enter__(self) -> TwilioGateway:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class FileGateway:
    """Development transport used when no Twilio credentials are configured.

    Each message is one JSON line appended to ``path`` (created 0600): the file plays
    the provider, so it holds the full number; the log line shows a masked number only.
    """

    def __init__(self, path: str | os.PathLike[str], address_prefix: str = "") -> None:
        self.path = Path(path)
        self.address_prefix = address_prefix

    def send(
        self,
        to: str,
        body: str,
        status_callback: str | None = None,
        *,
        content_sid: str | None = None,
        content_variables: str | None = None,
    ) -> ProviderResult:
        record = {
            "provider_id": "FILE" + uuid.uuid4().hex,
            "to": self.address_prefix + to,
            "body": "" if content_sid else body,
            "status_callback": status_callback,
            "status": "sent",
            "created_at": datetime.now(UTC).isoformat(),
        }
        if content_sid:
            record |= {"content_sid": content_sid, "content_variables": content_variables}
        self._append(json.dumps(record, ensure_ascii=False) + "\n")
        log.info("message written to file", extra={"to": mask_phone(to), "path": str(self.path)})
        return ProviderResult(record["provider_id"], "sent")

    def messages_to(self, to: str, since: datetime) -> list[ProviderMessage]:
        if not self.path.exists():
            return []
        found = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            rec = json.loads(line)
            created = datetime.fromisoformat(rec["created_at"])
            if rec["to"] == self.address_prefix + to and created >= since - RECONCILE_SKEW:
                found.append(
                    ProviderMessage(rec["provider_id"], to, rec["body"], rec["status"], created)
                )
        return found

    def _append(self, line: str) -> None:
        """One O_APPEND write per line, so concurrent dispatchers do not interleave."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line.encode("utf-8"))
        finally:
            os.close(fd)
