"""Request authentication and the decorators views use to say who may call them."""

from __future__ import annotations

from collections.abc import Callable, Collection
from functools import wraps
from typing import Any, TypeVar

from flask import request

from crm.auth.operations import authenticate
from crm.core.actors import Actor
from crm.core.errors import Forbidden, Unauthorized

F = TypeVar("F", bound=Callable[..., Any])
BEARER_SECURITY = [{"bearerAuth": []}]


def current_actor() -> Actor:
    """The caller of this request, authenticated once and kept with the request itself."""
    actor = request.environ.get("crm.actor")
    if actor is None:
        actor = _actor_from_header()
        request.environ["crm.actor"] = actor
    return actor


def caller_scope() -> str:
    """Whose Idempotency-Keys these are: the calling agency or staff user."""
    return current_actor().scope_key


def _actor_from_header() -> Actor:
    header = request.headers.get("Authorization", "")
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise Unauthorized("Send 'Authorization: Bearer <API key or staff token>'.")
    return authenticate(secret.strip())


def _requires(check: Callable[[Actor], bool], message: str) -> Callable[[F], F]:
    def decorator(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if not check(current_actor()):
                raise Forbidden(message)
            return view(*args, **kwargs)

        _document_security(wrapper)
        return wrapper  # type: ignore[return-value]

    return decorator


def _document_security(view: Any) -> None:
    docs = view.__dict__.setdefault("_apidoc", {})
    docs.setdefault("manual_doc", {}).setdefault("security", BEARER_SECURITY)


def any_caller(view: F) -> F:
    return _requires(lambda actor: actor.kind in {"agency", "staff"}, "")(view)


def agency_only(view: F) -> F:
    return _requires(lambda actor: actor.is_agency, "This endpoint is for partner agencies.")(view)


def role_allows(actor: Actor, roles: Collection[str]) -> bool:
    """The one role rule, for the API and the console: staff, with one of `roles` (none
    named: any staff role); an admin may do everything."""
    return actor.is_staff and (not roles or actor.role in roles or actor.role == "admin")


def staff_only(*roles: str) -> Callable[[F], F]:
    allowed = set(roles)

    def check(actor: Actor) -> bool:
        return role_allows(actor, allowed)

    roles_text = ", ".join(sorted(allowed)) or "any staff role"
    return _requires(check, f"This endpoint needs a staff token with role: {roles_text}.")
