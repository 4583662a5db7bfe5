"""The agency panel's keys page: create, rotate, revoke after a confirmation."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import select

from crm.auth.models import AgencyApiKey
from crm.core.db import utcnow
from tests.panel.members import signed_in_member, submit, text

KEYS = "/agency/keys"
SECRET = re.compile(r'<code class="secret" id="new-key">([^<]+)</code>')


def _keys(session, agency_id: int) -> list[AgencyApiKey]:
    session.expire_all()
    statement = select(AgencyApiKey).where(AgencyApiKey.agency_id == agency_id)
    return list(session.scalars(statement.order_by(AgencyApiKey.id)))


def _me(client, secret: str) -> int:
    return client.get("/api/v1/me", headers={"Authorization": f"Bearer {secret}"}).status_code


def test_the_keys_page_lists_the_agencys_own_keys_only(client, session, agency, factory):
    other = factory.agency()
    signed_in_member(client, session, agency)
    page = text(client.get(KEYS))
    assert agency.secret.split("_")[2] in page
    assert other.secret.split("_")[2] not in page
    assert agency.secret not in page


def test_a_new_key_is_shown_once_with_a_copy_hint(client, session, agency):
    signed_in_member(client, session, agency)
    response = submit(client, KEYS, {"label": "booking system"}, KEYS)
    assert response.status_code == 200
    secret = SECRET.search(text(response)).group(1)
    assert "Copy it now" in text(response)
    assert _me(client, secret) == 200
    assert secret not in text(client.get(KEYS))


def test_a_rotation_shows_the_new_secret_and_until_when_the_old_one_works(client, session, agency):
    signed_in_member(client, session, agency)
    [old] = _keys(session, agency.actor.agency_id)
    response = submit(client, f"{KEYS}/{old.id}/rotate", {}, KEYS)
    assert response.status_code == 200
    page = text(response)
    secret = SECRET.search(page).group(1)
    assert f"The old key <code>{old.prefix}</code> keeps working until" in page
    assert _me(client, secret) == 200 and _me(client, agency.secret) == 200
    [old, _new] = _keys(session, agency.actor.agency_id)
    old.expires_at = utcnow() - timedelta(seconds=1)
    session.commit()
    assert _me(client, agency.secret) == 401 and _me(client, secret) == 200


def test_revoking_asks_for_a_confirmation_first(client, session, agency):
    signed_in_member(client, session, agency)
    [key] = _keys(session, agency.actor.agency_id)
    page = text(client.get(f"{KEYS}/{key.id}/revoke"))
    assert f"Revoke key <code>{key.prefix}</code>?" in page
    assert "cannot be undone" in page
    assert _keys(session, agency.actor.agency_id)[0].revoked_at is None


def test_a_confirmed_revocation_stops_the_key(client, session, agency):
    signed_in_member(client, session, agency)
    [key] = _keys(session, agency.actor.agency_id)
    confirm = f"{KEYS}/{key.id}/revoke"
    response = submit(client, confirm, {}, confirm)
    assert response.status_code == 303
    assert f"Key {key.prefix} is revoked" in text(client.get(KEYS))
    assert _me(client, agency.secret) == 401


def test_another_agencys_key_is_not_found_in_the_panel(client, session, agency, factory):
    other = factory.agency()
    signed_in_member(client, session, agency)
    [theirs] = _keys(session, other.actor.agency_id)
    assert client.get(f"{KEYS}/{theirs.id}/revoke").status_code == 404
    assert submit(client, f"{KEYS}/{theirs.id}/rotate", {}, KEYS).status_code == 404
    assert submit(client, f"{KEYS}/{theirs.id}/revoke", {}, KEYS).status_code == 404
    assert _me(client, other.secret) == 200


def test_staff_are_sent_to_the_console_from_the_keys_page(client, session):
    from tests.console.support import sign_in, staff_with_password

    sign_in(client, staff_with_password(session, "coordinator").email)
    response = client.get(KEYS)
    assert response.status_code == 302 and response.headers["Location"].endswith("/console/")


def test_an_admin_rotates_an_agencys_key_on_the_agencies_page(client, session, agency):
    from tests.console.admin_support import signed_in
    from tests.console.support import post

    signed_in(client, session, "admin")
    [old] = _keys(session, agency.actor.agency_id)
    page = "/console/admin/agencies"
    response = post(client, f"{page}/keys/{old.prefix}/rotate", {}, form_page=page)
    assert response.status_code == 200
    secret = SECRET.search(text(response)).group(1)
    assert f"It succeeds <code>{old.prefix}</code>, which keeps working until" in text(response)
    assert _me(client, secret) == 200 and _me(client, agency.secret) == 200
    assert _keys(session, agency.actor.agency_id)[0].expires_at is not None
