"""Who is signed in to the console, and `staff_page(*roles)`, the decorator every page uses.

The cookie is Flask's signed session; it holds only the random id of a `staff_sessions`
row (and, mid-sign-in, the id of the user who still owes a code). The row is what makes
a session live: signing out, a password reset or an expiry ends it on every worker.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar
from urllib.parse import urlsplit

from flask import flash, redirect, render_template, request, session, url_for

from crm.auth import totp
from crm.auth.guards import role_allows
from crm.auth.models import StaffSession, StaffUser
from crm.auth.signin import resolve_session, staff_actor
from crm.core import audit
from crm.core.actors import Actor

F = TypeVar("F", bound=Callable[..., Any])
SESSION_KEY = "sid"
PENDING_KEY = "pending"


def current_session() -> StaffSession | None:
    """The live session of this request (looked up once, kept with the request itself), or
    None."""
    if "crm.staff_session" not in request.environ:
        request.environ["crm.staff_session"] = resolve_session(session.get(SESSION_KEY))
    return request.environ["crm.staff_session"]


def current_user() -> StaffUser | None:
    found = current_session()
    return found.user if found else None


def safe_next(target: str | None) -> str | None:
    """A place in the console to return to after sign-in; anything else (another host,
    `//evil`, a scheme) is dropped."""
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith(("/console/", "/agency/")):
        return None
    return target if "\\" not in target else None


def _sign_in_redirect():
    """To sign-in, and back after it: to this page, or for a form posted after the session
    ended, to the page the form was on (the form's own address takes only POST)."""
    if request.method == "GET":
        here = request.full_path if request.query_string else request.path
        return redirect(url_for("console.sign_in", next=here))
    came_from = urlsplit(request.referrer or "")
    same_host = came_from.netloc == request.host
    back = safe_next(came_from.path + (f"?{came_from.query}" if came_from.query else ""))
    flash("Your session has ended, so that was not done. Sign in and do it again.")
    return redirect(url_for("console.sign_in", next=back if same_host else None), 303)


def staff_page(*roles: str) -> Callable[[F], F]:
    """A console page for signed-in staff with one of `roles` (none named: any staff; an
    admin always), by the same rule as the API's `staff_only`.

    Not signed in: to the sign-in page (and back here after). Wrong role: a 403 page,
    audited. The view then finds the staff Actor where the API's views do:
    `crm.auth.guards.current_actor()`, and the user as `current_user()`."""
    allowed = frozenset(roles)

    def decorator(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            user = current_user()
            if user is None:
                return _sign_in_redirect()
            if user.is_agency_user:  # an agency's user works in the agency panel only
                return redirect(url_for("panel.home"))
            if totp.required_for(user) and not totp.enrolled(user):
                return redirect(url_for("console.enrol"))
            actor = staff_actor(user)
            request.environ["crm.actor"] = actor  # what crm.auth.guards.current_actor reads
            if not role_allows(actor, allowed):
                audit.record(actor, "console.forbidden", path=request.path[:200])
                return forbidden(allowed)
            return view(*args, **kwargs)

        wrapper.console_roles = allowed  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorator


def forbidden(allowed: frozenset[str]):
    from crm.core.http import keep_when_refused

    keep_when_refused()  # the refusal's audit row stays
    needed = ", ".join(sorted(allowed)) or "any staff role"
    return render_template("console/forbidden.html", needed=needed), 403


def signed_in_actor() -> Actor | None:
    user = current_user()
    return staff_actor(user) if user else None
