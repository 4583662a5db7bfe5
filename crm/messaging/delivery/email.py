"""Email over SMTP (plain, STARTTLS or implicit TLS), and a file fallback for development.

Every message is multipart/alternative (text first, HTML preferred), carries a
``Message-ID`` (returned as the provider id, so a delivery can be traced), and the
one-click unsubscribe headers of RFC 2369 / RFC 8058::

    List-Unsubscribe: <mailto:unsubscribe@...>, <https://.../unsubscribe/TOKEN>
    List-Unsubscribe-Post: List-Unsubscribe=One-Click

Errors are classified like SMS errors: 4xx replies, timeouts, connection and
authentication problems are transient (retry later); 5xx recipient/data refusals
are permanent.
"""

from __future__ import annotations

import json
import logging
import os
import smtplib
import ssl
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import formataddr, make_msgid, parseaddr
from enum import StrEnum
from pathlib import Path
from typing import Protocol

log = logging.getLogger(__name__)


class Security(StrEnum):
    NONE = "none"
    STARTTLS = "starttls"
    TLS = "tls"


@dataclass(frozen=True, slots=True)
class OutgoingEmail:
    to: str
    subject: str
    text: str
    html: str | None = None
    unsubscribe_url: str | None = None
    unsubscribe_mailto: str | None = None
    reply_to: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


class EmailError(Exception):
    transient = False

    def __init__(self, message: str, *, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class TransientEmailError(EmailError):
    transient = True


class PermanentEmailError(EmailError):
    pass


class Mailer(Protocol):
    def send(self, email: OutgoingEmail) -> str:
        """Send ``email``; return its Message-ID; raise :class:`EmailError` on failure."""
        ...


def _domain_of(address: str) -> str:
    return parseaddr(address)[1].rpartition("@")[2] or "localhost"


def build_message(email: OutgoingEmail, from_address: str) -> EmailMessage:
    """The MIME message: text + HTML alternatives and the unsubscribe headers."""
    msg = EmailMessage()
    msg["From"] = from_address
    msg["To"] = email.to
    msg["Subject"] = email.subject
    msg["Date"] = datetime.now(UTC)
    msg["Message-ID"] = make_msgid(domain=_domain_of(from_address))
    if email.reply_to:
        msg["Reply-To"] = email.reply_to
    links = [f"<mailto:{email.unsubscribe_mailto}>"] if email.unsubscribe_mailto else []
    links += [f"<{email.unsubscribe_url}>"] if email.unsubscribe_url else []
    if links:
        msg["List-Unsubscribe"] = ", ".join(links)
    if email.unsubscribe_url:
        msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    for name, value in email.headers.items():
        msg[name] = value
    msg.set_content(email.text)
    if email.html:
        msg.add_alternative(email.html, subtype="html")
    return msg


def classify_smtp_error(exc: Exception) -> EmailError:
    """Transient or permanent, from the SMTP reply code or the kind of failure."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        code = max(codes) if codes else None
        return _by_code(code, "recipient refused")
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return TransientEmailError("smtp authentication failed", code=exc.smtp_code)
    if isinstance(exc, smtplib.SMTPResponseException):
        return _by_code(exc.smtp_code, "smtp error")
    if isinstance(exc, smtplib.SMTPException | OSError):
        return TransientEmailError(f"smtp transport error: {type(exc).__name__}")
    raise exc


def _by_code(code: int | None, what: str) -> EmailError:
    if code is not None and 500 <= code < 600:
        return PermanentEmailError(f"{what} ({code})", code=code)
    return TransientEmailError(f"{what} ({code})", code=code)


class SmtpMailer:
    """Send over SMTP; ``security`` is ``none``, ``starttls`` or ``tls`` (implicit)."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        from_address: str,
        security: str | Security = Security.STARTTLS,
        username: str | None = None,
        password: str | None = None,
        timeout: float = 10.0,
        ssl_context: ssl.SSLContext | None = None,
        from_name: str | None = None,
    ) -> None:
        self.host, self.port = host, port
        self.security = Security(security)
        self.username, self.password = username, password
        self.timeout = timeout
        self.ssl_context = ssl_context or ssl.create_default_context()
        self.from_address = formataddr((from_name, from_address)) if from_name else from_address

    def send(self, email: OutgoingEmail) -> str:
        msg = build_message(email, self.from_address)
        try:
            with self._connect() as smtp:
                if self.username:
                    smtp.login(self.username, self.password or "")
                smtp.send_message(msg)
        except Exception as exc:  # classify_smtp_error re-raises what it does not know
            raise classify_smtp_error(exc) from exc
        return str(msg["Message-ID"])

    def _connect(self) -> smtplib.SMTP:
        if self.security is Security.TLS:
            return smtplib.SMTP_SSL(
                self.host, self.port, timeout=self.timeout, context=self.ssl_context
            )
        smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        try:
            if self.security is Security.STARTTLS:
                smtp.starttls(context=self.ssl_context)
        except Exception:
            smtp.close()
            raise
        return smtp


class FileMailer:
    """Development fallback: each message is a JSON line (headers and parts) in ``path``."""

    def __init__(self, path: str | os.PathLike[str], from_address: str) -> None:
        self.path = Path(path)
        self.from_address = from_address

    def send(self, email: OutgoingEmail) -> str:
        msg = build_message(email, self.from_address)
        record = {
            "message_id": str(msg["Message-ID"]),
            "headers": {k: str(v) for k, v in msg.items()},
            "text": email.text,
            "html": email.html,
            "created_at": datetime.now(UTC).isoformat(),
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8"))
        finally:
            os.close(fd)
        log.info("email written to file", extra={"message_id": record["message_id"]})
        return record["message_id"]
