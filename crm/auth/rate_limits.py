"""Rate limits: Flask-Limiter on one shared storage (CRM_RATE_LIMIT_STORAGE_URL).

- Every /api/ request counts against its caller: the API key or staff token (by its
  public prefix, once the credential is valid), or the client address when there is no
  valid credential (a guessed prefix cannot spend someone else's allowance).
- An agency's requests also count against the agency, over all its keys together.
- The patient pages count per client address (CRM_PORTAL_RATE_PER_MINUTE) and keep their
  own translated 429 page (crm/portal/views.py).
- Health checks, Twilio's webhooks and the email's unsubscribe link (a mail provider's
  one-click must never be refused) are never limited; neither is the console (its staff
  may share one office address).

A refusal is a 429 problem+json from crm/core/errors.py; Flask-Limiter adds Retry-After
and X-RateLimit-Limit/-Remaining/-Reset. The limits are read per request, so a changed
setting holds at once. `memory://` counts per worker (development); Redis is exact. When
Redis does not answer, each worker counts in its own memory until it does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from flask import Blueprint, Flask, Response, current_app, request
from flask_limiter import Limiter, RequestLimit
from flask_limiter.util import get_remote_address

from crm.core.errors import DomainError

KEY_PREFIX = "crm"


def _settings() -> dict:
    return current_app.config["CRM"]


def _credential_prefix() -> str | None:
    """The public prefix of this request's bearer credential, once it is known valid."""
    from crm.auth.guards import current_actor
    from crm.auth.operations import public_part

    if not request.headers.get("Authorization"):
        return None
    try:
        current_actor()
    except DomainError:
        return None
    _, _, secret = request.headers["Authorization"].partition(" ")
    return public_part(secret.strip()) or None


def caller_key() -> str:
    """Whose allowance a request spends: its key or token, else its address."""
    prefix = _credential_prefix()
    if prefix:
        return f"credential:{prefix}"
    return f"address:{get_remote_address()}"


def agency_key() -> str:
    from crm.auth.guards import current_actor

    return f"agency:{current_actor().agency_id}"


def _not_an_agency() -> bool:
    from crm.auth.guards import current_actor

    if _credential_prefix() is None:
        return True
    return not current_actor().is_agency


def _outside_the_api() -> bool:
    return not request.path.startswith("/api/")


def limiter_of(app: Flask) -> Limiter:
    return app.extensions["crm.limiter"]


def install(app: Flask) -> Limiter:
    """One limiter per app, on the configured storage, with the per-key limit on the API."""
    settings = app.config["CRM"]
    app.config.setdefault("RATELIMIT_HEADERS_ENABLED", True)
    app.config.setdefault("RATELIMIT_HEADER_RETRY_AFTER_VALUE", "delta-seconds")
    limiter = Limiter(
        key_func=caller_key,
        storage_uri=settings["RATE_LIMIT_STORAGE_URL"],
        key_prefix=KEY_PREFIX,
        strategy="fixed-window",
        headers_enabled=True,
        application_limits=[lambda: _settings()["RATE_LIMIT_PER_KEY"]],
        application_limits_exempt_when=_outside_the_api,
        # Redis down: count in this worker's memory until it answers again, and log it;
        # a limiter outage must not stop referrals or the patient pages.
        in_memory_fallback_enabled=True,
        swallow_errors=True,
    )
    limiter.init_app(app)
    app.extensions["crm.limiter"] = limiter
    return limiter


def limit_agencies(limiter: Limiter, blueprints: Iterable[Blueprint]) -> None:
    """One allowance per agency across all its keys and every API blueprint."""
    shared = limiter.shared_limit(
        lambda: _settings()["RATE_LIMIT_PER_AGENCY"],
        scope="agency",
        key_func=agency_key,
        exempt_when=_not_an_agency,
    )
    for blueprint in blueprints:
        shared(blueprint)


def limit_portal(limiter: Limiter, blueprint: Blueprint, refusal: Callable[[], Response]) -> None:
    """The patient pages: per address, answered by the portal's own page."""

    def _breached(_limit: RequestLimit) -> Response:
        return refusal()

    limiter.shared_limit(
        lambda: f"{_settings()['PORTAL_RATE_PER_MINUTE']} per minute",
        scope="portal",
        key_func=get_remote_address,
        on_breach=_breached,
    )(blueprint)


def limit_portal_uploads(limiter: Limiter, blueprint: Blueprint) -> None:
    """The patient's resumable uploads, per address: ten times the page's allowance (a
    large study goes in some thirty chunks), counted apart from the pages."""
    limiter.shared_limit(
        lambda: f"{_settings()['PORTAL_RATE_PER_MINUTE'] * 10} per minute",
        scope="portal-uploads",
        key_func=get_remote_address,
    )(blueprint)


def exempt(limiter: Limiter, blueprints: Iterable[Blueprint]) -> None:
    for blueprint in blueprints:
        limiter.exempt(blueprint)
