"""TOTP: admins and managers enrol at their first sign-in and give a code at every one."""

from __future__ import annotations

import re

import pyotp
import pytest
from sqlalchemy import select

from crm.auth.models import StaffUser
from crm.core.audit import AuditEvent
from crm.core.db import utcnow
from tests.console.support import post, sign_in, staff_with_password


def _code(secret: str, steps_ahead: int = 0) -> str:
    totp = pyotp.TOTP(secret)
    return totp.generate_otp(totp.timecode(utcnow()) + steps_ahead)


def _enrol(client) -> str:
    page = client.get("/console/enrol").get_data(as_text=True)
    secret = re.search(r'<code class="secret">([A-Z2-7]+)</code>', page).group(1)
    response = post(client, "/console/enrol", {"code": _code(secret)}, form_page="/console/enrol")
    assert response.status_code == 303, response.get_data(as_text=True)
    return secret


@pytest.mark.parametrize("role", ["admin", "manager"])
def test_an_admin_or_manager_is_sent_to_enrol_at_first_sign_in(client, session, role):
    user = staff_with_password(session, role)
    response = sign_in(client, user.email)
    assert response.headers["Location"].endswith("/console/enrol")
    assert client.get("/console/").status_code == 302  # not signed in before enrolment


def test_the_enrolment_page_shows_the_uri_the_key_and_a_qr_code(client, session):
    user = staff_with_password(session, "admin")
    sign_in(client, user.email)
    page = client.get("/console/enrol").get_data(as_text=True)
    assert "otpauth://totp/" in page
    assert re.search(r'<code class="secret">[A-Z2-7]{32}</code>', page)
    assert "<svg" in page


def test_enrolling_with_a_right_code_signs_the_admin_in(client, session):
    user = staff_with_password(session, "admin")
    sign_in(client, user.email)
    _enrol(client)
    assert client.get("/console/").status_code == 200
    session.expire_all()
    assert session.get(StaffUser, user.id).totp_enabled_at is not None


def test_a_wrong_enrolment_code_is_refused(client, session):
    user = staff_with_password(session, "admin")
    sign_in(client, user.email)
    client.get("/console/enrol")
    response = post(client, "/console/enrol", {"code": "000000"}, form_page="/console/enrol")
    assert response.status_code == 422
    assert client.get("/console/").status_code == 302


def test_an_enrolled_admin_needs_a_code_after_the_password(client, session):
    user = staff_with_password(session, "admin")
    sign_in(client, user.email)
    secret = _enrol(client)
    post(client, "/console/sign-out", {}, form_page="/console/")
    response = sign_in(client, user.email)
    assert response.headers["Location"].endswith("/console/sign-in/code")
    assert client.get("/console/").status_code == 302
    response = post(
        client, "/console/sign-in/code", {"code": _code(secret, 1)}, "/console/sign-in/code"
    )
    assert response.status_code == 303
    assert client.get("/console/").status_code == 200


def test_a_code_is_never_accepted_twice(client, session):
    user = staff_with_password(session, "admin")
    sign_in(client, user.email)
    secret = _enrol(client)
    session.expire_all()
    used_step = session.get(StaffUser, user.id).totp_last_step  # the step enrolment used
    post(client, "/console/sign-out", {}, form_page="/console/")
    sign_in(client, user.email)
    code_page = "/console/sign-in/code"
    again = pyotp.TOTP(secret).generate_otp(used_step)  # the same code, even past a step edge
    response = post(client, code_page, {"code": again}, form_page=code_page)
    assert response.status_code == 401


def test_a_wrong_code_counts_as_a_failed_sign_in(client, session):
    user = staff_with_password(session, "admin")
    sign_in(client, user.email)
    _enrol(client)
    post(client, "/console/sign-out", {}, form_page="/console/")
    sign_in(client, user.email)
    post(client, "/console/sign-in/code", {"code": "123456"}, "/console/sign-in/code")
    session.expire_all()
    reasons = [
        event.detail.get("reason")
        for event in session.scalars(
            select(AuditEvent).where(AuditEvent.action == "staff.sign_in_failed")
        )
    ]
    assert "wrong code" in reasons


def test_a_coordinator_signs_in_without_a_code(client, session):
    user = staff_with_password(session, "coordinator")
    assert sign_in(client, user.email).headers["Location"].endswith("/console/")


def test_the_key_is_never_shown_again_once_enrolled(client, session):
    user = staff_with_password(session, "admin")
    sign_in(client, user.email)
    secret = _enrol(client)
    response = client.get("/console/enrol")
    assert response.status_code == 302
    assert secret not in client.get("/console/").get_data(as_text=True)
