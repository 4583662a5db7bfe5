"""Domain errors and their single mapping to RFC 9457 problem+json."""

from __future__ import annotations

import errno
import logging
from collections.abc import Mapping
from typing import Any

from flask import Flask, Response, json, request
from sqlalchemy.exc import DataError, InterfaceError, OperationalError
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)

PROBLEM_TYPE_BASE = "https://errors.referral-crm.example/"
PROBLEM_MEDIA_TYPE = "application/problem+json"


class DomainError(Exception):
    status = 400
    code = "bad-request"
    title = "Bad request"

    def __init__(self, detail: str | None = None, **extensions: Any) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.extensions = extensions


class NotFound(DomainError):
    status, code, title = 404, "not-found", "Not found"


class Unauthorized(DomainError):
    status, code, title = 401, "unauthorized", "Authentication required"


class Forbidden(DomainError):
    status, code, title = 403, "forbidden", "Not allowed"


class Conflict(DomainError):
    status, code, title = 409, "conflict", "Conflict"


class GuardFailed(Conflict):
    code, title = "guard-failed", "Transition refused"


class ValidationFailed(DomainError):
    """422 with `errors`: a list of {field, reason}."""

    status, code, title = 422, "validation-failed", "The request is not valid"

    def __init__(self, errors: Mapping[str, str] | list[dict[str, str]], detail: str | None = None):
        if isinstance(errors, Mapping):
            errors = [{"field": field, "reason": reason} for field, reason in errors.items()]
        super().__init__(detail or "; ".join(f"{e['field']}: {e['reason']}" for e in errors))
        self.extensions = {"errors": errors}


class IdempotencyMismatch(DomainError):
    status, code = 422, "idempotency-key-reused"
    title = "Idempotency-Key reused with a different request"


class RequestInFlight(Conflict):
    code, title = "request-in-flight", "A request with this Idempotency-Key is still in progress"


class RateLimited(DomainError):
    status, code, title = 429, "rate-limited", "Too many requests"


def problem(
    status: int, code: str, title: str, detail: str | None = None, **extensions: Any
) -> Response:
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + code,
        "title": title,
        "status": status,
    }
    if detail:
        body["detail"] = detail
    body["instance"] = request.path if request else None
    body.update(extensions)
    response = Response(json.dumps(body), status=status, mimetype=PROBLEM_MEDIA_TYPE)
    return response


def flatten_marshmallow(messages: Any, prefix: str = "") -> list[dict[str, str]]:
    """{"patient": {"phone": ["Not a valid number."]}} -> [{"field": "patient.phone", ...}]

    A list index reads `stage[0]`; a schema-wide error (`_schema`) is the object's own."""
    errors: list[dict[str, str]] = []
    if isinstance(messages, Mapping):
        for key, value in messages.items():
            errors.extend(flatten_marshmallow(value, _field_path(prefix, key)))
    elif isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        errors.extend({"field": prefix or "body", "reason": m} for m in messages)
    elif isinstance(messages, list):
        for item in messages:
            errors.extend(flatten_marshmallow(item, prefix))
    else:
        errors.append({"field": prefix or "body", "reason": str(messages)})
    return errors


def _field_path(prefix: str, key: Any) -> str:
    if key == "_schema":
        return prefix
    if isinstance(key, int):
        return f"{prefix}[{key}]"
    return f"{prefix}.{key}" if prefix else str(key)


def _webargs_errors(exc: HTTPException) -> list[dict[str, str]]:
    messages = getattr(exc, "data", {}).get("messages", {})
    errors: list[dict[str, str]] = []
    for location, fields in messages.items():
        location_prefix = "" if location in {"json", "form", "files"} else location
        errors.extend(flatten_marshmallow(fields, location_prefix))
    return errors


def _plain_words(exc: HTTPException) -> str | None:
    """Werkzeug's stock descriptions speak of browsers and spelling; say what happened."""
    if exc.description != type(exc).description:
        return exc.description  # a description we (or flask-smorest) wrote
    if exc.code == 404:
        return f"nothing is at {request.path}: check the address and the id"
    if exc.code == 405:
        allowed = ", ".join(sorted(getattr(exc, "valid_methods", None) or ()))
        return f"{request.method} is not allowed on {request.path}; allowed: {allowed}"
    if exc.code == 413:
        return "the request body is larger than this endpoint takes"
    return exc.description


def http_problem(exc: HTTPException) -> Response:
    status = exc.code or 500
    if status == 429:
        return _rate_limited(exc)
    code = (exc.name or "error").lower().replace(" ", "-")
    title = exc.name or "Error"
    extensions: dict[str, Any] = {}
    detail = _plain_words(exc)
    if status == 422 and getattr(exc, "data", None):
        extensions["errors"] = _webargs_errors(exc)
        code, title = ValidationFailed.code, ValidationFailed.title
        detail = "; ".join(f"{e['field']}: {e['reason']}" for e in extensions["errors"])
    response = problem(status, code, title, detail, **extensions)
    if status == 405 and hasattr(exc, "valid_methods") and exc.valid_methods:
        response.headers["Allow"] = ", ".join(exc.valid_methods)
    return response


def _rate_limited(exc: HTTPException) -> Response:
    """Flask-Limiter's refusal (crm/auth/rate_limits.py): a page's own answer when the
    limit brought one (the patient pages), else problem+json naming the limit. Retry-After
    and the X-RateLimit-* headers are added by Flask-Limiter on the way out."""
    own = exc.get_response() if getattr(exc, "response", None) is not None else None
    if own is not None:
        return own
    limit = getattr(exc, "limit", None)
    detail = "Too many requests; try again after Retry-After seconds."
    if limit is not None:
        detail = f"Over the limit of {limit.limit}; try again after Retry-After seconds."
    return problem(RateLimited.status, RateLimited.code, RateLimited.title, detail)


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(DomainError)
    def _domain(exc: DomainError) -> Response:
        response = problem(exc.status, exc.code, exc.title, exc.detail, **exc.extensions)
        if exc.status == 401:  # RFC 9110 15.5.2: a 401 names the scheme to use
            response.headers["WWW-Authenticate"] = 'Bearer realm="api"'
        return response

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> Response:
        return http_problem(exc)

    @app.errorhandler(DataError)
    def _unstorable(exc: DataError) -> Response:
        """A value the database refused (out of range, not text): the edge and the schemas
        should have caught it, so it is logged, but the caller's error is still a 422."""
        log.warning(  # the class and SQLSTATE only: the message may quote the value
            "database refused a value on %s %s: %s %s",
            request.method,
            request.path,
            type(exc.orig).__name__,
            getattr(exc.orig, "sqlstate", ""),
        )
        return problem(
            422,
            ValidationFailed.code,
            ValidationFailed.title,
            "A value is out of range or is not text the database can store.",
            errors=[{"field": "body", "reason": "a value is out of range or is not storable"}],
        )

    @app.errorhandler(OperationalError)
    @app.errorhandler(InterfaceError)
    def _database_unavailable(exc: Exception) -> Response:
        return database_unavailable(exc)

    @app.errorhandler(OSError)
    def _disk(exc: OSError) -> Response:
        if exc.errno in NO_SPACE:
            return insufficient_storage(exc)
        return _unexpected(exc)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return problem(500, "internal-error", "Internal server error", "Something went wrong.")


# --- the infrastructure failing under a request (docs/operations.md, tests/faults) ------

NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT})
RETRY_AFTER_SECONDS = 5


def database_unavailable(exc: Exception) -> Response:
    """The database went away or refused the connection (a restart, a failover, a full
    pool): nothing of this request was committed, so the client may simply retry."""
    log.warning(  # the class and SQLSTATE only: the message may quote a value
        "database unavailable on %s %s: %s %s",
        request.method,
        request.path,
        type(getattr(exc, "orig", exc)).__name__,
        getattr(getattr(exc, "orig", None), "sqlstate", "") or "",
    )
    response = problem(
        503,
        "database-unavailable",
        "The database is unavailable",
        "Nothing was saved; retry after Retry-After seconds (with the same Idempotency-Key).",
    )
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def insufficient_storage(exc: OSError) -> Response:
    """The documents store is full (ENOSPC, EDQUOT): the upload was not kept."""
    log.error("documents storage full on %s %s: %s", request.method, request.path, exc.strerror)
    response = problem(
        507,
        "insufficient-storage",
        "Insufficient storage",
        "The document store is full; nothing was saved. Retry later.",
    )
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS * 12)
    return response
