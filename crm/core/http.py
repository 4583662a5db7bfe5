"""Request lifecycle: request ids, media types, one commit per request."""

from __future__ import annotations

import re
import uuid

from flask import Flask, Response, request
from swagger_ui_bundle import swagger_ui_path
from werkzeug.exceptions import UnsupportedMediaType

from crm.core.edge import BODY_METHODS as _BODY_METHODS
from crm.core.edge import check_request
from crm.extensions import db

JSON_ONLY = frozenset({"application/json"})
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def accepts(*media_types: str):
    """Declare the request media types a view takes (default: application/json)."""

    def decorator(view):
        view.accepted_media_types = frozenset(media_types)
        return view

    return decorator


def _assign_request_id() -> None:
    incoming = request.headers.get("X-Request-ID", "")
    request.environ["crm.request_id"] = (
        incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
    )


def _check_media_type() -> None:
    if request.method not in _BODY_METHODS or not request.path.startswith("/api/"):
        return
    has_body = (request.content_length or 0) > 0 or request.headers.get("Transfer-Encoding")
    if not has_body:
        return
    view = request.url_rule and request.url_rule.endpoint
    accepted = getattr(_view_function(view), "accepted_media_types", JSON_ONLY)
    if request.mimetype not in accepted:
        wanted = " or ".join(sorted(accepted))
        raise UnsupportedMediaType(f"Send the body as {wanted}, not {request.mimetype or 'none'}.")


def _view_function(endpoint: str | None):
    from flask import current_app

    return current_app.view_functions.get(endpoint) if endpoint else None


def keep_when_refused() -> None:
    """This request's refusal must outlast it (a failed sign-in counted against the lockout,
    its audit row): the boundary commits although the response is an error. A view calls
    it only after the refusal is fully written, and never after a half-done change."""
    request.environ["crm.keep_refusal"] = True


def commit_before_a_long_body() -> None:
    """A view about to read a large body for a long time (a resumable upload's PATCH)
    commits what the request did so far (authentication, the rows it read), so no
    transaction stays open, holding a connection and a snapshot, while a slow client
    sends; the request goes on in a new transaction, committed at the boundary as usual."""
    db.session.commit()


def _finish(response: Response) -> Response:
    """The request boundary: commit what a successful request did, roll back the rest."""
    if response.status_code < 400 or request.environ.get("crm.keep_refusal"):
        db.session.commit()
    else:
        db.session.rollback()
    response.headers["X-Request-ID"] = request.environ.get("crm.request_id", "")
    response.headers.setdefault("Cache-Control", "no-store")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    return response


def register_request_lifecycle(app: Flask) -> None:
    app.before_request(_assign_request_id)
    app.before_request(_check_media_type)
    app.before_request(check_request)
    app.after_request(_finish)


def register_docs_assets(app: Flask) -> None:
    """Swagger UI's files, served by us: the docs page must work without the internet."""
    from flask import send_from_directory

    def docs_asset(filename: str) -> Response:
        response = send_from_directory(swagger_ui_path, filename, max_age=86400)
        response.headers["Cache-Control"] = "public, max-age=86400"
        return response

    app.add_url_rule("/api/v1/docs-assets/<path:filename>", "docs_asset", docs_asset)
