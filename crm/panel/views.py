"""The agency panel's shell: `/agency/`, a partner agency's own pages.

Pages are modules listed in `crm/panel/pages.py`: `@panel.get(...)` + `@agency_page` + a
template extending `panel/base.html`. Forms post with the console's CSRF token; the
operations are the API's own, called with the agency Actor.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, has_request_context, render_template
from flask_wtf.csrf import CSRFError

from crm.console.views import csrf
from crm.core.errors import DomainError, ValidationFailed
from crm.panel.auth import agency_page, current_agency_user

panel = Blueprint(
    "panel", __name__, url_prefix="/agency", template_folder="templates", static_folder="static"
)
# The menu: (label, endpoint, what it is for). An endpoint not built yet is not linked.
NAV = (
    ("Referrals", "panel.referrals", "your referrals and where each one stands"),
    ("Send a patient", "panel.submit", "refer a new patient to the hospital"),
    ("Statements", "panel.statements", "your monthly commission statements"),
    ("API keys", "panel.keys", "keys for your systems: create, rotate, revoke"),
    ("Webhooks", "panel.webhooks", "endpoints that hear of changes, and their delivery log"),
    ("Team", "panel.team", "the people of your agency who may sign in here"),
)


@panel.before_request
def _check_csrf() -> None:
    from flask import request

    if request.method not in {"GET", "HEAD", "OPTIONS"}:
        csrf.protect()


@panel.after_request
def _headers(response):
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    )
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


@panel.errorhandler(DomainError)
def _refused_page(exc: DomainError):
    return render_template("panel/message.html", title=exc.title, text=exc.detail), exc.status


@panel.errorhandler(CSRFError)
def _csrf_refused(exc: CSRFError):
    """A form that expired or came from elsewhere: a page in words, as the console's."""
    words = (
        "This form could not be accepted: it has expired or did not come from this panel. "
        "Go back, reload the page and try again."
    )
    return render_template("panel/message.html", title="Form refused", text=words), 400


@panel.errorhandler(ValidationFailed)
def _invalid(exc: ValidationFailed):
    return render_template("panel/message.html", title="Not accepted", text=exc.detail), 422


@panel.context_processor
def _shell() -> dict[str, Any]:
    user = current_agency_user() if has_request_context() else None
    return {
        "agency_user": user,
        "agency": user.agency if user else None,
        "panel_nav": [
            (label, endpoint if endpoint in current_app.view_functions else None, purpose)
            for label, endpoint, purpose in NAV
        ],
    }


@panel.get("/")
@agency_page
def home():
    return render_template("panel/home.html")
