"""Signing in to the console through Flask's test client, as a browser would."""

from __future__ import annotations

import re
from itertools import count

from flask.testing import FlaskClient

from crm.auth import operations as auth
from crm.auth.models import StaffUser

PASSWORD = "correct horse battery staple"
_numbers = count(1)
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def staff_with_password(session, role: str = "coordinator", email: str | None = None) -> StaffUser:
    email = email or f"{role}.console{next(_numbers)}@hospital.example"
    user = auth.create_staff_user(email, f"Test {role.title()}", role, PASSWORD)
    session.commit()
    return user


def csrf_token(client: FlaskClient, path: str = "/console/sign-in") -> str:
    page = client.get(path)
    found = _CSRF.search(page.get_data(as_text=True))
    assert found, f"no CSRF token on {path} ({page.status_code})"
    return found.group(1)


def post(client: FlaskClient, path: str, data: dict, form_page: str = "/console/sign-in"):
    return client.post(path, data={**data, "csrf_token": csrf_token(client, form_page)})


def sign_in(client: FlaskClient, email: str, password: str = PASSWORD):
    return post(client, "/console/sign-in", {"email": email, "password": password})
