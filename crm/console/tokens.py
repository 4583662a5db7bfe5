"""'My API tokens': a staff user's personal bearer tokens for the API, created (the secret
shown once, on the page that created it), listed and revoked."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for

from crm.auth import operations as auth
from crm.auth.guards import current_actor
from crm.console.auth import current_user, staff_page
from crm.console.views import console
from crm.core import audit
from crm.core.errors import NotFound, ValidationFailed


@console.get("/tokens")
@staff_page()
def tokens():
    user = current_user()
    audit.record(current_actor(), "staff_token.list", staff_user_id=user.id)
    return render_template("console/tokens.html", tokens=auth.staff_tokens(user), issued=None)


@console.post("/tokens")
@staff_page()
def create_token():
    user = current_user()
    label = request.form.get("label", "").strip()
    try:
        issued = auth.issue_staff_token(user, label=label, actor=current_actor())
    except ValidationFailed as exc:
        flash(exc.detail)
        return redirect(url_for("console.tokens"), 303)
    # Rendered, not redirected: the secret is on this one response and nowhere else.
    return render_template("console/tokens.html", tokens=auth.staff_tokens(user), issued=issued)


@console.post("/tokens/<prefix>/revoke")
@staff_page()
def revoke_token(prefix: str):
    try:
        auth.revoke_staff_token(prefix[:32], actor=current_actor(), owner=current_user())
    except NotFound:
        flash("No such token among yours.")
        return redirect(url_for("console.tokens"), 303)
    flash(f"Token {prefix} is revoked: it no longer works.")
    return redirect(url_for("console.tokens"), 303)
