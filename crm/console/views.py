"""The console's shell: `/`, sign-in (password, then a TOTP code), sign-out, enrolment of
the second factor, and setting a password through an emailed link.

Views stay thin: they read the form, call one operation, and render or redirect. A
refused sign-in is a 401/429 page whose failure count and audit row are kept.
"""

from __future__ import annotations

import time
from typing import Any

from flask import (
    Blueprint,
    Flask,
    current_app,
    flash,
    g,
    has_request_context,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_wtf.csrf import CSRFError, CSRFProtect
from markupsafe import Markup

from crm.auth import passwords, totp
from crm.auth.models import StaffUser
from crm.auth.operations import MIN_PASSWORD_LENGTH
from crm.auth.signin import (
    SignInLocked,
    SignInRefused,
    check_password,
    end_session,
    record_failure,
    refuse_if_locked,
    staff_actor,
    start_session,
)
from crm.console.auth import (
    PENDING_KEY,
    SESSION_KEY,
    current_session,
    current_user,
    safe_next,
    staff_page,
)
from crm.core.errors import DomainError, RateLimited, ValidationFailed
from crm.core.http import keep_when_refused
from crm.extensions import db

console = Blueprint(
    "console",
    __name__,
    url_prefix="/console",
    template_folder="templates",
    static_folder="static",
)
csrf = CSRFProtect()
PENDING_SECONDS = 600  # between the password and the code
# The menu: (label, endpoint). A page not built yet is shown greyed out, not linked.
NAV = (
    ("Board", "console.board"),
    ("Today", "console.today"),
    ("Search", "console.search"),
    ("Reports", "console.reports"),
    ("Admin", "console.admin"),
    ("Audit", "console.audit_trail"),
)
PURPOSE = {  # what each page is for, said on the home page
    "Board": "every referral by stage; move a card on",
    "Today": "your tasks, urgent alerts, the review queue and this week's stays",
    "Search": "find a referral by reference, name, phone or email",
    "Reports": "funnel, time in stage, agencies, messaging, service levels",
    "Admin": "agencies and keys, the catalogue, rules and templates, staff",
    "Audit": "who saw or changed which patient's case, when and from where",
}


def register(app: Flask) -> None:
    """The blueprint, CSRF (checked by the console's own before_request only: the API's
    bearer tokens and Twilio's signed webhooks need none), and `/`."""
    csrf.init_app(app)
    app.register_blueprint(console)
    app.add_url_rule("/", "console_root", root)


def root():
    if current_session() is not None:
        return redirect(url_for("console.home"))
    return redirect(url_for("console.sign_in"))


@console.before_request
def _check_csrf() -> None:
    # Flask-WTF caches this request's token in `g`; an app context that outlives one
    # request (the tests', a CLI's) must not hand a token of an earlier session out.
    g.pop(current_app.config.get("WTF_CSRF_FIELD_NAME", "csrf_token"), None)
    if request.method not in {"GET", "HEAD", "OPTIONS"}:
        csrf.protect()


@console.after_request
def _headers(response):
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    )
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "no-referrer"  # password links carry a token
    return response


@console.errorhandler(CSRFError)
def _csrf_refused(exc: CSRFError):
    words = (
        "This form could not be accepted: it has expired or did not come from this console. "
        "Go back, reload the page and try again."
    )
    return render_template("console/message.html", title="Form refused", text=words), 400


@console.errorhandler(DomainError)
def _refused_page(exc: DomainError):
    """A console page for what the API would answer with problem+json (a referral that
    does not exist, or another's: 404 in the same words)."""
    return render_template("console/message.html", title=exc.title, text=exc.detail), exc.status


@console.errorhandler(ValidationFailed)
def _invalid(exc: ValidationFailed):
    return render_template("console/message.html", title="Not accepted", text=exc.detail), 422


@console.app_context_processor
def _shell() -> dict[str, Any]:
    """What base.html needs, for every page that extends it (other packages' too)."""
    user = current_user() if has_request_context() else None
    return {
        "hospital_name": current_app.config["CRM"]["HOSPITAL_NAME"],
        "console_user": user,
        "console_nav": [
            (label, endpoint if endpoint in current_app.view_functions else None)
            for label, endpoint in NAV
        ],
    }


@console.app_template_filter("local_time")
def _local_time(value, zone: str | None = None) -> str:
    """A UTC time in the viewer's zone (the signed-in user's), e.g. `2026-03-01 14:05 +03`."""
    from zoneinfo import ZoneInfo

    if value is None:
        return "never"
    user = current_user()
    tz = ZoneInfo(zone or (user.time_zone if user else "UTC"))
    return value.astimezone(tz).strftime("%Y-%m-%d %H:%M %Z")


@console.get("/")
@staff_page()
def home():
    return render_template("console/home.html", purpose=PURPOSE)


# --- sign-in -------------------------------------------------------------------------


def _refused(template: str, error: str, status: int, **context: Any):
    keep_when_refused()
    return render_template(template, error=error, **context), status


@console.route("/sign-in", methods=["GET", "POST"])
def sign_in():
    target = safe_next(request.values.get("next"))
    if request.method == "GET":
        if current_session() is not None:
            return redirect(target or url_for("console.home"))
        return render_template("console/sign_in.html", next=target, email="")
    email = request.form.get("email", "").strip()[:320]
    try:
        user = check_password(email, request.form.get("password", "")[:200], request.remote_addr)
    except SignInRefused as exc:
        return _refused("console/sign_in.html", exc.detail, exc.status, next=target, email=email)
    return _after_password(user, target)


def _after_password(user: StaffUser, target: str | None):
    if not totp.enrolled(user) and not totp.required_for(user):
        return _begin(user, target)
    session.clear()
    session[PENDING_KEY] = {"user": user.id, "at": int(time.time()), "next": target}
    step = "console.sign_in_code" if totp.enrolled(user) else "console.enrol"
    return redirect(url_for(step), 303)


def _begin(user: StaffUser, target: str | None):
    session.clear()  # nothing from before the sign-in survives it (no session fixation)
    session[SESSION_KEY] = start_session(user, request.remote_addr)
    session.permanent = True
    return redirect(target or url_for("console.home"), 303)


def _pending_user() -> tuple[StaffUser | None, str | None]:
    pending = session.get(PENDING_KEY)
    if not isinstance(pending, dict) or time.time() - pending.get("at", 0) > PENDING_SECONDS:
        return None, None
    user = db.session.get(StaffUser, pending.get("user"))
    return (user if user and user.active else None), safe_next(pending.get("next"))


@console.route("/sign-in/code", methods=["GET", "POST"])
def sign_in_code():
    user, target = _pending_user()
    if user is None or not totp.enrolled(user):
        flash("Sign in again: the code step has expired.")
        return redirect(url_for("console.sign_in"))
    if request.method == "GET":
        return render_template("console/code.html")
    try:
        refuse_if_locked(user.email, request.remote_addr)
    except SignInLocked as exc:
        session.pop(PENDING_KEY, None)
        return _refused("console/sign_in.html", exc.detail, exc.status, next=None, email="")
    if totp.check_code(user, request.form.get("code", "")[:20]):
        return _begin(user, target)
    record_failure(user.email, request.remote_addr, user, "wrong code")
    return _refused("console/code.html", "That code is not right. Try the newest one.", 401)


@console.route("/enrol", methods=["GET", "POST"])
def enrol():
    """The second factor: pending users (admins and managers at their first sign-in) and
    any signed-in user who wants one."""
    signed_in = current_user()
    user, target = (signed_in, None) if signed_in else _pending_user()
    if user is None:
        return redirect(url_for("console.sign_in"))
    if totp.enrolled(user):  # its key is never shown again
        flash("Your authenticator app is already set up.")
        return redirect(url_for("console.home" if signed_in else "console.sign_in_code"))
    secret = totp.begin_enrolment(user)
    if request.method == "POST":
        try:
            totp.confirm_enrolment(user, request.form.get("code", "")[:20], staff_actor(user))
        except ValidationFailed:
            record_failure(user.email, request.remote_addr, user, "wrong enrolment code")
            return _refused(
                "console/enrol.html",
                "That code is not right. Check the clock of your device and try the newest one.",
                422,
                **_enrolment(user, secret),
            )
        if signed_in is None:
            return _begin(user, target)
        flash("Your authenticator app is now required when you sign in.")
        return redirect(url_for("console.home"), 303)
    return render_template("console/enrol.html", **_enrolment(user, secret))


def _enrolment(user: StaffUser, secret: str | None) -> dict[str, Any]:
    uri = totp.provisioning_uri(user)
    return {
        "secret": secret,
        "uri": uri,
        "qr": Markup(totp.qr_svg(uri)),  # noqa: S704 - segno's own SVG, no user text in it
        "required": totp.required_for(user),
    }


@console.post("/sign-out")
def sign_out():
    found = current_session()
    if found is not None:
        end_session(found)
    session.clear()
    flash("You have signed out.")
    return redirect(url_for("console.sign_in"), 303)


# --- passwords -----------------------------------------------------------------------


@console.route("/forgot", methods=["GET", "POST"])
def forgot():
    if request.method == "GET":
        return render_template("console/forgot.html")
    try:
        passwords.request_reset(request.form.get("email", "").strip()[:320], request.remote_addr)
    except RateLimited as exc:
        return _refused("console/message.html", None, 429, title="Please wait", text=exc.detail)
    words = (
        "If that email belongs to a console account, a link to set a new password is on its "
        "way. It works once and for a limited time."
    )
    return render_template("console/message.html", title="Check your email", text=words)


@console.route("/password/<token>", methods=["GET", "POST"])
def password(token: str):
    link = passwords.open_link(token[:100])
    if link is None:
        return render_template(
            "console/message.html",
            title="Link not valid",
            text="This link has been used or has expired. Ask for a new one.",
            forgot=True,
        ), 404
    if request.method == "GET":
        return render_template("console/password.html", minimum=MIN_PASSWORD_LENGTH)
    new, again = request.form.get("password", ""), request.form.get("confirm", "")
    if new != again:
        return render_template(
            "console/password.html", minimum=MIN_PASSWORD_LENGTH, error="The two do not match."
        ), 422
    try:
        passwords.use_link(token[:100], new[:201])
    except ValidationFailed as exc:
        reason = exc.extensions["errors"][0]["reason"]
        return render_template(
            "console/password.html", minimum=MIN_PASSWORD_LENGTH, error=f"The password {reason}."
        ), exc.status
    session.clear()
    flash("Your password is set. Sign in with it now.")
    return redirect(url_for("console.sign_in"), 303)
