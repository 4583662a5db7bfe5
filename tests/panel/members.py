"""An agency's user with a password, signed in through the console's sign-in page."""

from __future__ import annotations

from itertools import count

from flask.testing import FlaskClient

from crm.agencies.models import Agency
from crm.auth import operations as auth
from crm.auth.models import StaffUser
from tests.console.support import PASSWORD, post, sign_in

_numbers = count(1)


def agency_of(session, caller) -> Agency:
    return session.get(Agency, caller.actor.agency_id)


def member(session, caller, name: str | None = None) -> StaffUser:
    n = next(_numbers)
    user = auth.create_agency_user(
        agency_of(session, caller), f"member{n}@agency.example", name or f"Member {n}", PASSWORD
    )
    session.commit()
    return user


def signed_in_member(client: FlaskClient, session, caller) -> StaffUser:
    user = member(session, caller)
    response = sign_in(client, user.email)
    assert response.status_code == 303, response.get_data(as_text=True)
    return user


def submit(client: FlaskClient, path: str, data: dict, form_page: str):
    return post(client, path, data, form_page=form_page)


def text(response) -> str:
    return response.get_data(as_text=True)
