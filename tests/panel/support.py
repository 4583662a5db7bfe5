"""Agency users signed in to the panel through Flask's test client, as a browser would."""

from __future__ import annotations

import re
from itertools import count

from flask.testing import FlaskClient

from crm.agencies.models import Agency
from crm.auth import operations as auth
from crm.auth.models import StaffUser
from tests.console.support import PASSWORD, csrf_token, sign_in

_numbers = count(1)
FORM_KEY = re.compile(r'name="form_key" value="([^"]+)"')


def agency_user(session, agency_id: int, time_zone: str = "Europe/Berlin") -> StaffUser:
    """A user of the agency with a password (what the panel's team page will invite)."""
    n = next(_numbers)
    user = StaffUser(
        email=f"panel{n}@agency.example",
        name=f"Agent {n}",
        role="agency",
        agency_id=agency_id,
        time_zone=time_zone,
    )
    auth.set_password(user, PASSWORD)
    session.add(user)
    session.commit()
    return user


def signed_in_agency(client: FlaskClient, session, agency_id: int, **kw) -> StaffUser:
    user = agency_user(session, agency_id, **kw)
    assert sign_in(client, user.email).status_code == 303
    return user


def panel_post(client: FlaskClient, path: str, data: dict, form_page: str, **kw):
    return client.post(path, data={**data, "csrf_token": csrf_token(client, form_page)}, **kw)


def agency_name(session, agency_id: int) -> str:
    return session.get(Agency, agency_id).name


def text(response) -> str:
    return response.get_data(as_text=True)
