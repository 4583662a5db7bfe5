"""Repeated failed sign-ins lock the account and the address, with a growing back-off."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from crm.auth.models import SignInThrottle
from crm.core.audit import AuditEvent
from crm.core.db import utcnow
from tests.console.support import sign_in, staff_with_password

WRONG = "not the password at all"


@pytest.fixture
def limit(app, monkeypatch) -> int:
    monkeypatch.setitem(app.config["CRM"], "SIGN_IN_MAX_FAILURES", 3)
    monkeypatch.setitem(app.config["CRM"], "SIGN_IN_LOCKOUT_SECONDS", 60)
    return 3


def _throttle(session, key: str) -> SignInThrottle:
    session.expire_all()
    return session.scalar(select(SignInThrottle).where(SignInThrottle.key == key))


def _fail(client, email: str, times: int):
    response = None
    for _ in range(times):
        response = sign_in(client, email, WRONG)
    return response


def test_the_failure_that_reaches_the_limit_locks_the_account(client, session, limit):
    user = staff_with_password(session)
    assert _fail(client, user.email, limit - 1).status_code == 401
    response = _fail(client, user.email, 1)
    assert response.status_code == 429
    assert "Try again in 1 minute" in response.get_data(as_text=True)


def test_a_locked_account_refuses_even_the_right_password(client, session, limit):
    user = staff_with_password(session)
    _fail(client, user.email, limit)
    response = sign_in(client, user.email)
    assert response.status_code == 429
    assert client.get("/console/").status_code == 302


def test_an_unknown_email_locks_exactly_like_a_real_one(client, session, limit):
    user = staff_with_password(session)
    real = _fail(client, user.email, limit).get_data(as_text=True)
    made_up = _fail(client, "nobody.at.all@hospital.example", limit).get_data(as_text=True)
    assert "Too many failed sign-ins" in real and "Too many failed sign-ins" in made_up


def test_each_failure_after_a_lock_doubles_the_next_one(client, session, limit):
    user = staff_with_password(session)
    _fail(client, user.email, limit)
    key = f"account:{user.email}"
    row = _throttle(session, key)
    first = row.locked_until - row.last_failure_at
    row.locked_until = utcnow() - timedelta(seconds=1)  # the first lock has passed
    session.commit()
    _fail(client, user.email, 1)
    row = _throttle(session, key)
    assert first == timedelta(seconds=60)
    assert row.locked_until - row.last_failure_at == timedelta(seconds=120)


def test_the_lock_is_over_once_its_time_has_passed(client, session, limit):
    user = staff_with_password(session)
    _fail(client, user.email, limit)
    row = _throttle(session, f"account:{user.email}")
    row.locked_until = utcnow() - timedelta(seconds=1)
    session.commit()
    assert sign_in(client, user.email).status_code == 303


def test_a_good_sign_in_clears_the_account_count(client, session, limit):
    user = staff_with_password(session)
    _fail(client, user.email, limit - 1)
    sign_in(client, user.email)
    assert _throttle(session, f"account:{user.email}") is None


def test_one_address_failing_on_many_accounts_is_locked_too(client, session, limit):
    user = staff_with_password(session)
    for n in range(limit * 4):
        sign_in(client, f"guess{n}@hospital.example", WRONG)
    response = sign_in(client, user.email)
    assert response.status_code == 429


def test_a_lockout_is_audited(client, session, limit):
    user = staff_with_password(session)
    _fail(client, user.email, limit)
    sign_in(client, user.email)
    session.expire_all()
    actions = set(session.scalars(select(AuditEvent.action)))
    assert {"staff.sign_in_lockout", "staff.sign_in_locked_out"} <= actions
