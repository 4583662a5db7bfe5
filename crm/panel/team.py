"""`/agency/team`: the agency's own users. Any of them may invite another (an emailed link
to set a password, as staff invitations work) or deactivate one (their sessions end at
once); nobody deactivates themself or the agency's last active member. The rules are in
`crm.auth.team`."""

from __future__ import annotations

from flask import redirect, render_template, request, url_for

from crm.agencies.queries import agency_by_id
from crm.auth import team as accounts
from crm.auth.guards import current_actor
from crm.console.actions import attempt
from crm.panel.auth import agency_page, current_agency_user
from crm.panel.views import panel

PAGE = "panel.team"


@panel.get("/team")
@agency_page
def team():
    rows = accounts.members_with_last_sign_in(current_actor().agency_id)
    return render_template("panel/team.html", rows=rows, me=current_agency_user())


@panel.post("/team")
@agency_page
def invite_member():
    actor = current_actor()
    email = request.form.get("email", "").strip()[:320]
    attempt(
        lambda: accounts.invite_member(
            agency_by_id(actor.agency_id), email, request.form.get("name", "")[:300], actor
        ),
        done=f"{email} is invited: a link to set their password is on its way by email.",
    )
    return redirect(url_for(PAGE), 303)


@panel.post("/team/<int:user_id>/deactivate")
@agency_page
def deactivate_member(user_id: int):
    actor = current_actor()
    user = accounts.member_of(actor.agency_id, user_id)
    attempt(
        lambda: accounts.deactivate_member(user, current_agency_user(), actor),
        done=f"{user.name} is deactivated and signed out everywhere.",
    )
    return redirect(url_for(PAGE), 303)
