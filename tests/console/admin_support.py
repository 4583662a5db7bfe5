"""Signing an admin (or a manager) in through the test client: password, then a TOTP code
from their authenticator, as the console asks of these roles."""

from __future__ import annotations

import re

import pyotp
from flask.testing import FlaskClient
from sqlalchemy import select

from crm.auth.models import StaffUser
from crm.core.audit import AuditEvent
from crm.core.db import utcnow
from tests.console.support import post, sign_in, staff_with_password

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def enrolled_staff(session, role: str = "admin", email: str | None = None) -> StaffUser:
    """A user whose authenticator is already set up (enrolment itself is tested in
    test_second_factor.py)."""
    user = staff_with_password(session, role, email)
    user.totp_secret = pyotp.random_base32()
    user.totp_enabled_at = utcnow()
    session.commit()
    return user


def sign_in_with_code(client: FlaskClient, user: StaffUser) -> None:
    response = sign_in(client, user.email)
    assert response.headers["Location"].endswith("/console/sign-in/code"), response.status
    code = pyotp.TOTP(user.totp_secret).now()
    response = post(client, "/console/sign-in/code", {"code": code}, "/console/sign-in/code")
    assert response.status_code == 303, response.get_data(as_text=True)


def signed_in(client: FlaskClient, session, role: str) -> StaffUser:
    """A signed-in user of `role` (admins and managers through their second factor)."""
    if role in {"admin", "manager"}:
        user = enrolled_staff(session, role)
        sign_in_with_code(client, user)
    else:
        user = staff_with_password(session, role)
        sign_in(client, user.email)
    return user


def submit(client: FlaskClient, path: str, data: dict, form_page: str):
    """POST a console form with the CSRF token of the page it is on."""
    return post(client, path, data, form_page=form_page)


def text(response) -> str:
    return response.get_data(as_text=True)


def audited(session, action: str, actor: StaffUser | None = None) -> list[AuditEvent]:
    session.expire_all()
    statement = select(AuditEvent).where(AuditEvent.action == action)
    if actor is not None:
        statement = statement.where(
            AuditEvent.actor_type == "staff", AuditEvent.actor_id == actor.id
        )
    return list(session.scalars(statement))
