"""Staff and roles: managers read, admins invite, change roles, deactivate, reactivate;
never yourself, never the last admin."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from crm.auth import operations as auth
from crm.auth.models import PasswordLink, StaffToken, StaffUser
from tests.console.admin_support import audited, signed_in, submit, text
from tests.console.support import sign_in, staff_with_password

STAFF = "/console/admin/staff"


def test_the_staff_page_lists_name_email_role_state_second_factor_and_last_sign_in(client, session):
    admin = signed_in(client, session, "admin")
    other = staff_with_password(session, "specialist")
    page = text(client.get(STAFF))
    assert admin.email in page and other.email in page
    assert "Test Specialist" in page
    row = page[page.index(other.email) :].split("</tr>")[0]
    assert "active" in row and "off" in row and "never" in row
    mine = page[page.index(admin.email) :].split("</tr>")[0]
    assert "on" in mine and "never" not in mine  # the admin signed in just now


def test_a_manager_reads_the_staff_but_gets_no_forms(client, session):
    signed_in(client, session, "manager")
    page = text(client.get(STAFF))
    assert "Invite a staff user" not in page
    assert "Deactivate" not in page


def test_a_coordinator_may_not_open_the_staff_page(client, session):
    signed_in(client, session, "coordinator")
    assert client.get(STAFF).status_code == 403


@pytest.mark.parametrize("role", ["coordinator", "manager"])
def test_only_an_admin_may_invite_staff(client, session, role):
    signed_in(client, session, role)
    form = {"name": "Mallory", "email": "mallory@hospital.example", "role": "admin"}
    assert submit(client, STAFF, form, "/console/").status_code == 403
    assert session.scalar(select(StaffUser).where(StaffUser.email == form["email"])) is None


def test_a_coordinator_may_not_change_a_role_or_deactivate(client, session):
    me = signed_in(client, session, "coordinator")
    target = staff_with_password(session, "specialist")
    role = submit(client, f"{STAFF}/{me.id}/role", {"role": "admin"}, "/console/")
    off = submit(client, f"{STAFF}/{target.id}/deactivate", {}, "/console/")
    assert (role.status_code, off.status_code) == (403, 403)
    session.expire_all()
    assert (me.role, target.active) == ("coordinator", True)


def test_an_admin_invites_a_user_who_gets_a_password_link_and_it_is_audited(client, session):
    admin = signed_in(client, session, "admin")
    form = {"name": "Deniz Yilmaz", "email": "Deniz@Hospital.example", "role": "coordinator"}
    response = submit(client, STAFF, form, STAFF)
    assert response.status_code == 303
    user = session.scalar(select(StaffUser).where(StaffUser.email == "deniz@hospital.example"))
    assert (user.role, user.password_hash) == ("coordinator", None)
    link = session.scalar(select(PasswordLink).where(PasswordLink.user_id == user.id))
    assert link.purpose == "set"
    assert "a link to set their password is on its way" in text(client.get(STAFF))
    assert audited(session, "staff_user.create", admin)
    assert audited(session, "staff.password_link_sent", admin)


def test_inviting_an_email_already_on_staff_is_refused_in_words(client, session):
    signed_in(client, session, "admin")
    other = staff_with_password(session, "coordinator")
    submit(client, STAFF, {"name": "Twin", "email": other.email, "role": "coordinator"}, STAFF)
    assert "exists already" in text(client.get(STAFF))


def test_an_admin_changes_a_role_and_it_is_audited(client, session):
    admin = signed_in(client, session, "admin")
    other = staff_with_password(session, "coordinator")
    response = submit(client, f"{STAFF}/{other.id}/role", {"role": "specialist"}, STAFF)
    assert response.status_code == 303
    session.expire_all()
    assert session.get(StaffUser, other.id).role == "specialist"
    [event] = audited(session, "staff_user.role_change", admin)
    assert (event.detail["before"], event.detail["after"]) == ("coordinator", "specialist")


def test_deactivating_ends_the_users_sessions_and_revokes_their_tokens(client, app, session):
    admin = signed_in(client, session, "admin")
    other = staff_with_password(session, "coordinator")
    issued = auth.issue_staff_token(other, label="script")
    session.commit()
    theirs = app.test_client()
    sign_in(theirs, other.email)
    assert theirs.get("/console/").status_code == 200
    response = submit(client, f"{STAFF}/{other.id}/deactivate", {}, STAFF)
    assert response.status_code == 303
    assert theirs.get("/console/").status_code == 302  # signed out
    api = theirs.get("/api/v1/me", headers={"Authorization": f"Bearer {issued.secret}"})
    assert api.status_code == 401
    session.expire_all()
    assert session.get(StaffToken, issued.id).revoked_at is not None
    [event] = audited(session, "staff_user.deactivate", admin)
    assert event.detail["sessions_ended"] == 1 and event.detail["tokens_revoked"] == 1


def test_a_deactivated_user_cannot_sign_in_until_reactivated(client, app, session):
    admin = signed_in(client, session, "admin")
    other = staff_with_password(session, "coordinator")
    submit(client, f"{STAFF}/{other.id}/deactivate", {}, STAFF)
    assert sign_in(app.test_client(), other.email).status_code == 401
    submit(client, f"{STAFF}/{other.id}/reactivate", {}, STAFF)
    assert sign_in(app.test_client(), other.email).status_code == 303
    assert audited(session, "staff_user.reactivate", admin)


def test_an_admin_cannot_deactivate_themself(client, session):
    admin = signed_in(client, session, "admin")
    staff_with_password(session, "admin")  # not the last admin: the self rule alone refuses
    submit(client, f"{STAFF}/{admin.id}/deactivate", {}, STAFF)
    assert "you cannot deactivate your own account" in text(client.get(STAFF))
    session.expire_all()
    assert session.get(StaffUser, admin.id).active


def test_the_last_admin_cannot_be_given_another_role(client, session):
    for user in session.scalars(select(StaffUser).where(StaffUser.role == "admin")):
        user.active = False  # whatever other tests' rows exist, this admin is the only one
    session.commit()
    admin = signed_in(client, session, "admin")
    submit(client, f"{STAFF}/{admin.id}/role", {"role": "manager"}, STAFF)
    page = text(client.get(STAFF))
    assert "is the last active admin; make someone else an admin before changing" in page
    session.expire_all()
    assert session.get(StaffUser, admin.id).role == "admin"


def test_the_last_admin_cannot_be_deactivated_by_anyone(session):
    from crm.auth.staff import deactivate
    from crm.core.actors import SYSTEM
    from crm.core.errors import GuardFailed

    for user in session.scalars(select(StaffUser).where(StaffUser.role == "admin")):
        user.active = False
    admin = staff_with_password(session, "admin")
    with pytest.raises(GuardFailed, match="last active admin"):
        deactivate(admin, SYSTEM)


def test_with_a_second_admin_an_admin_may_step_down(client, session):
    admin = signed_in(client, session, "admin")
    staff_with_password(session, "admin")
    submit(client, f"{STAFF}/{admin.id}/role", {"role": "manager"}, STAFF)
    session.expire_all()
    assert session.get(StaffUser, admin.id).role == "manager"
