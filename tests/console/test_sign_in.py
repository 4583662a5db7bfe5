"""Signing in and out of the console: passwords, sessions, cookies, CSRF, `/`."""

from __future__ import annotations

from sqlalchemy import select

from crm.core.audit import AuditEvent
from tests.console.support import PASSWORD, csrf_token, post, sign_in, staff_with_password


def _actions(session, user_id=None) -> list[str]:
    statement = select(AuditEvent.action).order_by(AuditEvent.id)
    if user_id is not None:
        statement = statement.where(AuditEvent.actor_id == user_id)
    return list(session.scalars(statement))


def test_the_root_sends_a_visitor_to_the_sign_in_page(client):
    response = client.get("/")
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/console/sign-in")


def test_the_root_sends_signed_in_staff_to_the_console(client, session):
    user = staff_with_password(session)
    sign_in(client, user.email)
    response = client.get("/")
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/console/")


def test_a_console_page_sends_a_visitor_to_sign_in_and_back_after(client, session):
    response = client.get("/console/tokens")
    assert response.status_code == 302
    assert "/console/sign-in?next=/console/tokens" in response.headers["Location"]
    user = staff_with_password(session)
    response = post(
        client,
        "/console/sign-in",
        {"email": user.email, "password": PASSWORD, "next": "/console/tokens"},
    )
    assert response.headers["Location"].endswith("/console/tokens")


def test_sign_in_never_returns_to_another_site(client, session):
    user = staff_with_password(session)
    response = client.post(
        "/console/sign-in",
        data={
            "email": user.email,
            "password": PASSWORD,
            "next": "//evil.example/console/",
            "csrf_token": csrf_token(client),
        },
    )
    assert response.headers["Location"].endswith("/console/")
    assert "evil" not in response.headers["Location"]


def test_signing_in_with_the_right_password_shows_the_name_and_role(client, session):
    user = staff_with_password(session, "specialist")
    response = sign_in(client, user.email)
    assert response.status_code == 303
    page = client.get("/console/").get_data(as_text=True)
    assert user.name in page and "specialist" in page
    assert "staff.sign_in" in _actions(session, user.id)


def test_the_email_is_matched_without_regard_to_case(client, session):
    user = staff_with_password(session)
    assert sign_in(client, user.email.upper()).status_code == 303


def test_a_wrong_password_is_refused_in_words_that_name_no_account(client, session):
    user = staff_with_password(session)
    wrong = sign_in(client, user.email, "not the password at all")
    unknown = sign_in(client, "nobody@hospital.example", "not the password at all")
    assert wrong.status_code == unknown.status_code == 401
    assert "The email or password is not right." in wrong.get_data(as_text=True)
    assert "The email or password is not right." in unknown.get_data(as_text=True)
    assert client.get("/console/").status_code == 302


def test_a_failed_sign_in_is_audited_and_kept(client, session):
    user = staff_with_password(session)
    sign_in(client, user.email, "not the password at all")
    session.expire_all()
    assert "staff.sign_in_failed" in _actions(session, user.id)


def test_an_inactive_account_cannot_sign_in(client, session):
    user = staff_with_password(session)
    user.active = False
    session.commit()
    assert sign_in(client, user.email).status_code == 401


def test_a_form_without_its_csrf_token_is_refused(client, session):
    user = staff_with_password(session)
    response = client.post("/console/sign-in", data={"email": user.email, "password": PASSWORD})
    assert response.status_code == 400
    assert "did not come from this console" in response.get_data(as_text=True)


def test_a_form_with_a_forged_csrf_token_is_refused(client, session):
    user = staff_with_password(session)
    client.get("/console/sign-in")
    response = client.post(
        "/console/sign-in",
        data={"email": user.email, "password": PASSWORD, "csrf_token": "forged"},
    )
    assert response.status_code == 400


def test_the_api_takes_bearer_tokens_without_any_csrf_token(client, coordinator):
    response = client.post(
        "/api/v1/referrals/1/notes",
        json={"body": "no csrf here"},
        headers={"Authorization": f"Bearer {coordinator.secret}"},
    )
    assert response.status_code == 404  # reached the view: no such referral, no CSRF refusal


def test_the_session_cookie_is_httponly_and_samesite_lax(client, session):
    user = staff_with_password(session)
    response = sign_in(client, user.email)
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_signing_out_ends_the_session_even_for_a_copied_cookie(client, app, session):
    user = staff_with_password(session)
    sign_in(client, user.email)
    stolen = client.get_cookie("crm_console").value
    response = post(client, "/console/sign-out", {}, form_page="/console/")
    assert response.status_code == 303
    assert client.get("/console/").status_code == 302
    other = app.test_client()
    other.set_cookie("crm_console", stolen)
    assert other.get("/console/").status_code == 302
    assert "staff.sign_out" in _actions(session, user.id)


def test_sign_out_needs_the_csrf_token(client, session):
    user = staff_with_password(session)
    sign_in(client, user.email)
    assert client.post("/console/sign-out").status_code == 400
    assert client.get("/console/").status_code == 200


def test_console_pages_forbid_framing_and_load_nothing_from_elsewhere(client):
    response = client.get("/console/sign-in")
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    assert "https://" not in response.get_data(as_text=True)  # no CDN, no outside asset


def test_the_stylesheet_is_served_by_the_app(client):
    with client.get("/console/static/console.css") as response:
        assert response.status_code == 200
        assert "font-family" in response.get_data(as_text=True)


def test_a_form_posted_after_the_session_ended_returns_to_its_page_after_sign_in(client, session):
    response = client.post(
        "/console/tokens",
        data={"label": "x", "csrf_token": csrf_token(client)},
        headers={"Referer": "http://localhost/console/tokens"},
    )
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/console/sign-in?next=/console/tokens")


def test_a_form_posted_from_another_site_after_the_session_ended_returns_nowhere_special(client):
    response = client.post(
        "/console/tokens",
        data={"csrf_token": csrf_token(client)},
        headers={"Referer": "https://evil.example/console/tokens"},
    )
    assert response.headers["Location"].endswith("/console/sign-in")
