"""Agencies and their API keys: managers and admins read; admins create an agency, issue a
key (its secret on that one response only) and revoke one. The same operations as the
command line's `crm create-agency`, `create-key` and `revoke-key`."""

from __future__ import annotations

from flask import redirect, render_template, request, url_for

from crm.agencies.operations import create_agency
from crm.agencies.queries import agency_by_id, all_agencies
from crm.auth import operations as auth
from crm.auth import team
from crm.auth.guards import current_actor, role_allows
from crm.console.actions import attempt
from crm.console.auth import staff_page
from crm.console.views import console
from crm.core import audit
from crm.referrals.queries import open_referrals_by_agency

PAGE = "console.admin_agencies"


def _page(issued=None, issued_to=None, rotation=None):
    actor = current_actor()
    audit.record(actor, "agency_key.list")
    return render_template(
        "console/admin/agencies.html",
        agencies=all_agencies(),
        open_referrals=open_referrals_by_agency(),
        keys=auth.agency_keys(),
        can_change=role_allows(actor, {"admin"}),
        issued=issued,
        issued_to=issued_to,
        rotation=rotation,
        key_state=auth.key_state,
        members=team.members_by_agency(),
    )


@console.get("/admin/agencies")
@staff_page("manager")
def admin_agencies():
    return _page()


def _basis_points(raw: str) -> int:
    """'12.5' (percent) as 1250 basis points; anything unreadable as -1, refused in words."""
    try:
        return round(float(raw.replace(",", ".").strip() or "0") * 100)
    except ValueError:
        return -1


@console.post("/admin/agencies")
@staff_page("admin")
def admin_create_agency():
    form = request.form
    name = form.get("name", "")[:300]
    attempt(
        lambda: create_agency(
            name,
            form.get("country", "")[:60],
            form.get("contact_email", "").strip()[:320] or None,
            _basis_points(form.get("commission_percent", "")[:10]),
            actor=current_actor(),
        ),
        done=f"Agency {' '.join(name.split())} created. Issue it an API key below.",
    )
    return redirect(url_for(PAGE), 303)


@console.post("/admin/agencies/<int:agency_id>/keys")
@staff_page("admin")
def admin_issue_key(agency_id: int):
    agency = agency_by_id(agency_id)
    label = request.form.get("label", "").strip()[:200]
    issued = attempt(lambda: auth.issue_agency_key(agency, label=label, actor=current_actor()))
    if issued is None:
        return redirect(url_for(PAGE), 303)
    # Rendered, not redirected: the secret is on this one response and nowhere else.
    return _page(issued=issued, issued_to=agency)


@console.post("/admin/agencies/keys/<prefix>/revoke")
@staff_page("admin")
def admin_revoke_key(prefix: str):
    attempt(
        lambda: auth.revoke_agency_key(prefix[:32], actor=current_actor()),
        done=f"Key {prefix[:32]} is revoked: it no longer works.",
    )
    return redirect(url_for(PAGE), 303)


@console.post("/admin/agencies/keys/<prefix>/rotate")
@staff_page("admin")
def admin_rotate_key(prefix: str):
    """A successor (its secret on this one response) beside the old key, which works on
    until CRM_API_KEY_ROTATION_OVERLAP_HOURS have passed."""
    rotation = attempt(
        lambda: auth.rotate_agency_key(auth.agency_key_with_prefix(prefix[:32]), current_actor())
    )
    if rotation is None:
        return redirect(url_for(PAGE), 303)
    return _page(issued=rotation.issued, issued_to=rotation.old.agency, rotation=rotation)


@console.post("/admin/agencies/<int:agency_id>/users")
@staff_page("admin")
def admin_invite_agency_user(agency_id: int):
    """An agency's user (its first, usually: after that its own people invite each other in
    the agency panel), emailed a link to set their password."""
    agency = agency_by_id(agency_id)
    email = request.form.get("email", "").strip()[:320]
    attempt(
        lambda: team.invite_member(
            agency, email, request.form.get("name", "")[:300], current_actor()
        ),
        done=f"{email} is invited to {agency.name}'s panel: a link to set their password "
        "is on its way by email.",
    )
    return redirect(url_for(PAGE), 303)
