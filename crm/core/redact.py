"""Credentials never reach a log line: patient link tokens and short codes, unsubscribe
tokens, API keys, staff tokens and Authorization headers are replaced by `[redacted]`, and
a full phone number keeps only its last two digits.

Two doors lead to the logs, and both are guarded here: gunicorn's own logger (the
`RedactingGunicornLogger` class; `config/gunicorn.conf.py` names its JSON subclass in
`crm.core.logs`, which writes no access log at all), and the app's own loggers
(`RedactingFilter`, attached to the root handlers by create_app). A token in a URL path is
the patient's credential (anyone holding `/p/<token>` reads their case), so the path is
rewritten, not merely the query string.
"""

from __future__ import annotations

import logging
import re
from typing import Any

REDACTED = "[redacted]"

_PATTERNS = (
    # /p/<token>/..., /s/<code> (an SMS's short link), /unsubscribe/<token>: the credential
    # is the path segment.
    (re.compile(r"(/p/)[^/?#\s\"']+"), rf"\g<1>{REDACTED}"),
    (re.compile(r"(/s/)[^/?#\s\"']+"), rf"\g<1>{REDACTED}"),
    (re.compile(r"(/unsubscribe/)[^/?#\s\"']+"), rf"\g<1>{REDACTED}"),
    # A full phone number (E.164): only its last two digits stay, enough to tell two apart.
    (re.compile(r"(?<![\w+])\+\d{5,13}(\d{2})\b"), r"+…\g<1>"),
    # Agency keys and staff tokens, wherever they appear (a pasted URL, an error message).
    (re.compile(r"\bcrm_(?:ak|st)_[A-Za-z0-9_\-]+"), REDACTED),
    # Authorization: Bearer/Basic ..., and token-like query parameters.
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=\-]+"), rf"\g<1> {REDACTED}"),
    (re.compile(r"(?i)((?:^|[?&])(?:token|key|api_key|access_token|signature)=)[^&\s\"']*"),
     rf"\g<1>{REDACTED}"),
)  # fmt: skip

SECRET_HEADERS = frozenset({"authorization", "cookie", "x-twilio-signature", "proxy-authorization"})


def redact(text: str) -> str:
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactingFilter(logging.Filter):
    """Rewrites each record's message (and its arguments) with credentials redacted."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is not ours to break; leave it alone
            return True
        redacted = redact(message)
        if redacted != message or record.args:
            record.msg, record.args = redacted, None
        if record.exc_info and not record.exc_text:  # a traceback may quote a URL too
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


def install_filter(logger: logging.Logger | None = None) -> None:
    """Attach the filter to every handler of `logger` (the root by default), once."""
    target = logger or logging.getLogger()
    for handler in target.handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())


try:  # gunicorn is a server dependency; the app itself does not need it to import
    from gunicorn.glogging import Logger as _GunicornLogger
except ImportError:  # pragma: no cover
    _GunicornLogger = object  # type: ignore[assignment,misc]


def _secret_atom(name: str) -> bool:
    """A request header atom (`{authorization}i`) or its environ twin
    (`{http_authorization}e`) that carries a credential."""
    if name.startswith("{") and name.endswith(("}i", "}e")):
        header = name[1:-2].removeprefix("http_").replace("_", "-")
        return header in SECRET_HEADERS
    return False


class RedactingGunicornLogger(_GunicornLogger):  # type: ignore[misc,valid-type]
    """gunicorn's logger with every access-log atom redacted (request line, path, query,
    Referer, Location); secret headers are never logged at all, whatever the format says;
    error-log messages are redacted too."""

    def atoms(self, resp: Any, req: Any, environ: dict, request_time: Any) -> dict:
        atoms = super().atoms(resp, req, environ, request_time)
        for name, value in atoms.items():
            if _secret_atom(name):
                atoms[name] = REDACTED
            elif isinstance(value, str):
                atoms[name] = redact(value)  # the request line, a Referer, a Location...
        return atoms

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        for logger in (self.error_log, self.access_log):
            for handler in logger.handlers:
                handler.addFilter(RedactingFilter())
