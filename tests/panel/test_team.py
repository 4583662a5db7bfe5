"""The agency panel's team page: invite a member (an emailed link), deactivate one."""

from __future__ import annotations

import re

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from crm.auth import team
from crm.auth.models import StaffSession, StaffUser
from crm.core.errors import GuardFailed
from crm.messaging.models import OutboxMessage
from tests.console.admin_support import signed_in
from tests.console.support import post, sign_in, staff_with_password
from tests.panel.members import agency_of, member, signed_in_member, submit, text

TEAM = "/agency/team"
NEW = "a brand new passphrase 42"


def _emailed_link(session, to: str) -> str:
    session.expire_all()
    message = session.scalars(
        select(OutboxMessage)
        .where(OutboxMessage.to_address == to, OutboxMessage.kind == "staff_password_link")
        .order_by(OutboxMessage.id.desc())
    ).first()
    assert message is not None, "no password email in the outbox"
    return re.search(r"(/console/password/[A-Za-z0-9_-]+)", message.body_text).group(1)


def _user(session, email: str) -> StaffUser:
    session.expire_all()
    return session.scalar(select(StaffUser).where(StaffUser.email == email))


def _take_up_invitation(app, session, email: str) -> str:
    """The invitee opens the emailed link, sets a password, signs in: where they land."""
    invitee = app.test_client()
    link = _emailed_link(session, email)
    response = post(invitee, link, {"password": NEW, "confirm": NEW}, form_page=link)
    assert response.status_code == 303, text(response)
    response = sign_in(invitee, email, NEW)
    assert response.status_code == 303, text(response)
    return invitee.get(response.headers["Location"], follow_redirects=True).request.path


def test_the_team_page_lists_the_agencys_members_only(client, session, agency, factory):
    me = signed_in_member(client, session, agency)
    colleague = member(session, agency, "Colleague Dilek")
    stranger = member(session, factory.agency(), "Stranger Hans")
    page = text(client.get(TEAM))
    assert me.email in page and colleague.email in page
    assert stranger.email not in page


def test_an_invited_member_sets_a_password_and_lands_in_the_panel(app, client, session, agency):
    signed_in_member(client, session, agency)
    data = {"name": "Invited Ayla", "email": "ayla@agency.example"}
    response = submit(client, TEAM, data, TEAM)
    assert response.status_code == 303
    assert "a link to set their password is on its way" in text(client.get(TEAM))
    invited = _user(session, "ayla@agency.example")
    assert (invited.role, invited.agency_id) == ("agency", agency.actor.agency_id)
    assert invited.password_hash is None
    assert _take_up_invitation(app, session, "ayla@agency.example") == "/agency/"


def test_an_invitation_with_a_bad_email_is_refused_in_words(client, session, agency):
    signed_in_member(client, session, agency)
    submit(client, TEAM, {"name": "Someone", "email": "not-an-email"}, TEAM)
    assert "Not accepted: email:" in text(client.get(TEAM))


def test_deactivating_a_member_ends_their_sessions(app, client, session, agency):
    other_browser: FlaskClient = app.test_client()
    colleague = signed_in_member(other_browser, session, agency)
    assert other_browser.get("/agency/").status_code == 200
    signed_in_member(client, session, agency)
    response = submit(client, f"{TEAM}/{colleague.id}/deactivate", {}, TEAM)
    assert response.status_code == 303, text(response)
    assert "is deactivated and signed out everywhere" in text(client.get(TEAM))
    session.expire_all()
    assert not _user(session, colleague.email).active
    open_sessions = session.scalars(
        select(StaffSession).where(
            StaffSession.user_id == colleague.id, StaffSession.revoked_at.is_(None)
        )
    ).all()
    assert open_sessions == []
    assert "/console/sign-in" in other_browser.get("/agency/").headers["Location"]


def test_a_member_cannot_deactivate_themself(client, session, agency):
    me = signed_in_member(client, session, agency)
    member(session, agency)
    submit(client, f"{TEAM}/{me.id}/deactivate", {}, TEAM)
    assert "you cannot deactivate your own account" in text(client.get(TEAM))
    assert _user(session, me.email).active


def test_the_last_active_member_is_never_deactivated(session, agency, factory):
    only = member(session, agency)
    admin = staff_with_password(session, "admin")
    from crm.auth.signin import staff_actor

    with pytest.raises(GuardFailed, match="last active member"):
        team.deactivate_member(only, admin, staff_actor(admin))
    assert only.active


def test_another_agencys_member_cannot_be_deactivated(client, session, agency, factory):
    signed_in_member(client, session, agency)
    stranger = member(session, factory.agency())
    member(session, factory.agency())
    response = submit(client, f"{TEAM}/{stranger.id}/deactivate", {}, TEAM)
    assert response.status_code == 404
    assert _user(session, stranger.email).active


def test_a_staff_user_cannot_be_deactivated_from_the_panel(client, session, agency):
    signed_in_member(client, session, agency)
    staff = staff_with_password(session, "coordinator")
    assert submit(client, f"{TEAM}/{staff.id}/deactivate", {}, TEAM).status_code == 404
    assert _user(session, staff.email).active


def test_an_admin_invites_an_agencys_first_user_from_the_agencies_page(app, client, session):
    from tests.factories import Factory

    caller = Factory(session).agency("Nordic Care")
    signed_in(client, session, "admin")
    page = "/console/admin/agencies"
    assert "nobody can sign in to Nordic Care" in text(client.get(page))
    data = {"name": "First Freya", "email": "freya@nordic.example"}
    path = f"/console/admin/agencies/{caller.actor.agency_id}/users"
    assert post(client, path, data, form_page=page).status_code == 303
    assert "is invited to Nordic Care" in text(client.get(page))
    first = _user(session, "freya@nordic.example")
    assert first.agency_id == agency_of(session, caller).id
    assert _take_up_invitation(app, session, "freya@nordic.example") == "/agency/"


def test_staff_still_sign_in_to_the_console(client, session):
    user = staff_with_password(session, "coordinator")
    response = sign_in(client, user.email)
    assert client.get(response.headers["Location"], follow_redirects=True).request.path == (
        "/console/"
    )
