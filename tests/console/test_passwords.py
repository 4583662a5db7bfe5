"""Setting a password through an emailed one-time link."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import select

from crm.auth.models import PasswordLink
from crm.core.db import utcnow
from crm.messaging.models import OutboxMessage
from tests.console.support import post, sign_in, staff_with_password

NEW = "a brand new passphrase 42"
FORGOT = "/console/forgot"


def _emailed_link(session, to: str) -> str:
    session.expire_all()
    message = session.scalars(
        select(OutboxMessage)
        .where(OutboxMessage.to_address == to, OutboxMessage.kind == "staff_password_link")
        .order_by(OutboxMessage.id.desc())
    ).first()
    assert message is not None, "no password email in the outbox"
    return re.search(r"(/console/password/[A-Za-z0-9_-]+)", message.body_text).group(1)


def _main(response) -> str:
    return response.get_data(as_text=True).split("<main", 1)[1].split("</main>", 1)[0]


def _forgot(client, email: str):
    return post(client, FORGOT, {"email": email}, form_page=FORGOT)


def _set(client, path: str, password: str = NEW):
    return post(client, path, {"password": password, "confirm": password}, form_page=path)


def test_asking_for_a_reset_writes_an_email_with_a_link_to_the_outbox(client, session):
    user = staff_with_password(session)
    assert _forgot(client, user.email).status_code == 200
    path = _emailed_link(session, user.email)
    message = session.scalar(select(OutboxMessage).where(OutboxMessage.to_address == user.email))
    assert message.channel == "email" and message.status == "queued"
    assert f'href="http://127.0.0.1:5000{path}"' in message.body_html


def test_asking_for_an_unknown_email_says_the_same_and_sends_nothing(client, session):
    known = staff_with_password(session)
    one = _forgot(client, known.email)
    other = _forgot(client, "x@nowhere.example")
    assert one.status_code == other.status_code == 200
    assert "If that email belongs to a console account" in _main(other)
    assert _main(one) == _main(other)
    sent = session.scalars(
        select(OutboxMessage).where(OutboxMessage.to_address == "x@nowhere.example")
    ).all()
    assert sent == []


def test_the_link_sets_a_password_that_then_signs_in(client, session):
    user = staff_with_password(session)
    _forgot(client, user.email)
    assert _set(client, _emailed_link(session, user.email)).status_code == 303
    assert sign_in(client, user.email, NEW).status_code == 303


def test_the_link_works_only_once(client, session):
    user = staff_with_password(session)
    _forgot(client, user.email)
    path = _emailed_link(session, user.email)
    _set(client, path)
    response = client.get(path)
    assert response.status_code == 404
    assert "used or has expired" in response.get_data(as_text=True)
    assert sign_in(client, user.email, NEW).status_code == 303


def test_an_expired_link_no_longer_works(client, session):
    user = staff_with_password(session)
    _forgot(client, user.email)
    path = _emailed_link(session, user.email)
    link = session.scalar(select(PasswordLink).where(PasswordLink.user_id == user.id))
    link.expires_at = utcnow() - timedelta(seconds=1)
    session.commit()
    response = client.get(path)
    assert response.status_code == 404
    assert "used or has expired" in response.get_data(as_text=True)


def test_a_too_short_password_is_refused_and_the_link_still_works(client, session):
    user = staff_with_password(session)
    _forgot(client, user.email)
    path = _emailed_link(session, user.email)
    response = _set(client, path, "short")
    assert response.status_code == 422
    assert "at least 12 characters" in response.get_data(as_text=True)
    assert client.get(path).status_code == 200


def test_setting_a_password_ends_every_session_of_that_user(client, app, session):
    user = staff_with_password(session)
    sign_in(client, user.email)
    other = app.test_client()
    _forgot(other, user.email)
    _set(other, _emailed_link(session, user.email))
    assert client.get("/console/").status_code == 302


def test_the_link_is_stored_only_as_a_hash(client, session):
    user = staff_with_password(session)
    _forgot(client, user.email)
    token = _emailed_link(session, user.email).rsplit("/", 1)[1]
    link = session.scalar(select(PasswordLink).where(PasswordLink.user_id == user.id))
    assert token not in link.token_hash and len(link.token_hash) == 64


def test_the_cli_emails_a_new_user_a_link_to_set_a_password(app, session):
    user = staff_with_password(session)
    result = app.test_cli_runner().invoke(args=["crm", "send-password-link", user.email])
    assert result.exit_code == 0, result.output
    assert _emailed_link(session, user.email).startswith("/console/password/")


def test_an_email_asked_for_too_often_gets_no_more_links_and_the_same_words(client, session):
    user = staff_with_password(session)
    answers = [_forgot(client, user.email) for _ in range(5)]
    assert {a.status_code for a in answers} == {200}
    assert len({_main(a) for a in answers}) == 1
    links = session.scalars(select(OutboxMessage).where(OutboxMessage.to_address == user.email))
    assert len(links.all()) == 3


def test_an_address_asking_for_many_links_is_told_to_wait(client, session):
    answers = [_forgot(client, f"guess{n}@nowhere.example") for n in range(13)]
    assert [a.status_code for a in answers[:12]] == [200] * 12
    assert answers[12].status_code == 429
    assert "Too many password links were asked for from this address" in _main(answers[12])
