"""`agency_page`, the decorator every agency panel page uses.

An agency's users sign in where staff do (`/console/sign-in`, the same sessions, lockout
and second factor); their Actor is their agency (`crm.auth.signin.staff_actor`), so every
query that keeps agencies apart for API keys keeps them apart here: another agency's
referral is a 404, in the same words.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import redirect, request, url_for

from crm.auth.models import StaffUser
from crm.auth.signin import staff_actor
from crm.console.auth import current_user

F = TypeVar("F", bound=Callable[..., Any])


def current_agency_user() -> StaffUser | None:
    user = current_user()
    return user if user is not None and user.is_agency_user else None


def agency_page(view: F) -> F:
    """Signed in as an agency's user (of an active agency): the page, with the agency Actor
    where `crm.auth.guards.current_actor()` finds it. Staff go to the console; no one
    signed in goes to sign-in and comes back here after."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        user = current_user()
        if user is None:
            here = request.full_path if request.query_string else request.path
            target = here if request.method == "GET" else url_for("panel.home")
            return redirect(url_for("console.sign_in", next=target))
        if not user.is_agency_user:
            return redirect(url_for("console.home"))
        if user.agency is None or not user.agency.active:
            from crm.console.auth import forbidden

            return forbidden(frozenset({"an active agency"}))
        request.environ["crm.actor"] = staff_actor(user)
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
