"""'My API tokens' in the console and `flask crm token ...` on the command line."""

from __future__ import annotations

import re

from sqlalchemy import select

from crm.auth import operations as auth
from crm.auth.models import StaffToken
from crm.core.audit import AuditEvent
from tests.console.support import post, sign_in, staff_with_password

TOKENS = "/console/tokens"
_SECRET = re.compile(r'<code class="secret" id="new-token">(crm_st_[^<]+)</code>')


def _works(client, secret: str) -> bool:
    response = client.get("/api/v1/referrals", headers={"Authorization": f"Bearer {secret}"})
    return response.status_code == 200


def _create(client, label: str = "export script") -> str:
    response = post(client, TOKENS, {"label": label}, form_page=TOKENS)
    assert response.status_code == 200
    return _SECRET.search(response.get_data(as_text=True)).group(1)


def test_a_token_created_in_the_console_is_shown_once_and_works(client, app, session):
    user = staff_with_password(session)
    sign_in(client, user.email)
    secret = _create(client)
    assert _works(app.test_client(), secret)
    assert secret not in client.get(TOKENS).get_data(as_text=True)


def test_the_token_list_shows_prefixes_and_labels_never_secrets(client, session):
    user = staff_with_password(session)
    sign_in(client, user.email)
    secret = _create(client, "nightly sync")
    page = client.get(TOKENS).get_data(as_text=True)
    assert "nightly sync" in page
    assert secret.rsplit("_", 1)[0][:15] in page
    assert secret not in page


def test_revoking_a_token_in_the_console_stops_it_working(client, app, session):
    user = staff_with_password(session)
    sign_in(client, user.email)
    secret = _create(client)
    prefix = "_".join(secret.split("_")[:3])
    response = post(client, f"{TOKENS}/{prefix}/revoke", {}, form_page=TOKENS)
    assert response.status_code == 303
    assert not _works(app.test_client(), secret)
    assert "revoked" in client.get(TOKENS).get_data(as_text=True)


def test_no_one_can_revoke_another_users_token_from_the_console(client, app, session):
    owner = staff_with_password(session)
    issued = auth.issue_staff_token(owner, label="mine")
    session.commit()
    intruder = staff_with_password(session)
    sign_in(client, intruder.email)
    post(client, f"{TOKENS}/{issued.prefix}/revoke", {}, form_page=TOKENS)
    assert _works(app.test_client(), issued.secret)


def test_creating_and_revoking_tokens_is_audited_as_the_user(client, session):
    user = staff_with_password(session)
    sign_in(client, user.email)
    secret = _create(client)
    prefix = "_".join(secret.split("_")[:3])
    post(client, f"{TOKENS}/{prefix}/revoke", {}, form_page=TOKENS)
    session.expire_all()
    actions = session.scalars(
        select(AuditEvent.action).where(
            AuditEvent.actor_id == user.id, AuditEvent.actor_type == "staff"
        )
    ).all()
    assert {"staff_token.issue", "staff_token.revoke", "staff_token.list"} <= set(actions)


def test_the_token_pages_need_a_signed_in_user(client):
    assert client.get(TOKENS).status_code == 302


def _cli(app, *args: str):
    result = app.test_cli_runner().invoke(args=["crm", "token", *args])
    assert result.exit_code == 0, (result.output, result.exception)
    return result


def test_the_cli_creates_a_token_printed_alone_on_the_last_line(app, client, session):
    user = staff_with_password(session)
    secret = _cli(app, "create", user.email, "--label", "cli").stdout.strip().splitlines()[-1]
    assert secret.startswith("crm_st_") and " " not in secret
    assert _works(client, secret)


def test_the_cli_lists_tokens_without_their_secrets(app, session):
    user = staff_with_password(session)
    secret = _cli(app, "create", user.email, "--label", "cli").stdout.strip().splitlines()[-1]
    listing = _cli(app, "list", user.email).output
    assert "_".join(secret.split("_")[:3]) in listing
    assert "cli" in listing and "active" in listing
    assert secret not in listing


def test_the_cli_revokes_a_token_by_its_prefix(app, client, session):
    user = staff_with_password(session)
    secret = _cli(app, "create", user.email).stdout.strip().splitlines()[-1]
    prefix = "_".join(secret.split("_")[:3])
    _cli(app, "revoke", prefix)
    assert not _works(client, secret)
    session.expire_all()
    token = session.scalar(select(StaffToken).where(StaffToken.prefix == prefix))
    assert token.revoked_at is not None


def test_the_cli_says_so_when_no_token_has_that_prefix(app, session):
    result = app.test_cli_runner().invoke(args=["crm", "token", "revoke", "crm_st_00000000"])
    assert result.exit_code != 0
    assert "no staff token" in result.output
