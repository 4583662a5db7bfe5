"""`staff_page(*roles)`: the API's role rule on every console page."""

from __future__ import annotations

import pyotp
import pytest
from flask import Flask
from sqlalchemy import select

from crm import create_app
from crm.auth.guards import current_actor
from crm.console.auth import staff_page
from crm.core.audit import AuditEvent
from crm.core.db import utcnow
from tests.conftest import ROOT
from tests.console.support import post, sign_in, staff_with_password


@pytest.fixture(scope="module")
def pages_app(database_url: str) -> Flask:
    """An app with two pages built the way later console pages will be."""
    app = create_app(
        {
            "ENV": "test",
            "DATABASE_URL": database_url,
            "SECRET_KEY": "test-secret-key-that-is-long-enough-123",
            "CATALOGUE_FILE": str(ROOT / "config" / "procedures.toml"),
        }
    )
    app.config["TESTING"] = True

    @staff_page("manager")
    def revenue():
        return f"revenue for {current_actor().label}"

    @staff_page("coordinator", "specialist")
    def queue():
        return f"queue of {current_actor().role}"

    app.add_url_rule("/console/test/revenue", "test_revenue", revenue)
    app.add_url_rule("/console/test/queue", "test_queue", queue)
    return app


@pytest.fixture
def pages(pages_app: Flask, connection):
    return pages_app.test_client()


def test_a_page_refuses_a_role_it_does_not_name_with_a_403_page(pages, session):
    specialist = staff_with_password(session, "specialist")
    sign_in(pages, specialist.email)
    response = pages.get("/console/test/revenue")
    assert response.status_code == 403
    assert "needs the role: manager" in response.get_data(as_text=True)


def test_a_refusal_is_audited(pages, session):
    specialist = staff_with_password(session, "specialist")
    sign_in(pages, specialist.email)
    pages.get("/console/test/revenue")
    session.expire_all()
    actions = session.scalars(
        select(AuditEvent.action).where(AuditEvent.actor_id == specialist.id)
    ).all()
    assert "console.forbidden" in actions


def test_a_page_gives_the_view_the_signed_in_staff_actor(pages, session):
    coordinator = staff_with_password(session, "coordinator")
    sign_in(pages, coordinator.email)
    response = pages.get("/console/test/queue")
    assert response.get_data(as_text=True) == "queue of coordinator"


def test_an_admin_may_open_every_page_like_in_the_api(pages, session):
    admin = staff_with_password(session, "admin")
    admin.totp_secret, admin.totp_enabled_at = pyotp.random_base32(), utcnow()
    session.commit()
    sign_in(pages, admin.email)
    code = pyotp.TOTP(admin.totp_secret).now()
    post(pages, "/console/sign-in/code", {"code": code}, form_page="/console/sign-in/code")
    response = pages.get("/console/test/revenue")
    assert response.status_code == 200
    assert response.get_data(as_text=True) == f"revenue for {admin.name}"


def test_an_admin_who_has_not_enrolled_is_sent_to_enrol(pages, session):
    admin = staff_with_password(session, "admin")
    sign_in(pages, admin.email)
    assert pages.get("/console/test/revenue").status_code == 302


def test_a_visitor_is_sent_to_sign_in(pages):
    response = pages.get("/console/test/revenue")
    assert response.status_code == 302
    assert "/console/sign-in?next=/console/test/revenue" in response.headers["Location"]
