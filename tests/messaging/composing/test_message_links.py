"""Links in messages are on the configured public address (`CRM_PUBLIC_BASE_URL`), which
make run/serve derive from HOST and PORT: the patient's short link in an SMS, the private
link and the unsubscribe link in an email, the console link in a coordinator's email."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest

from tests.conftest import ROOT
from tests.messaging.support import new_referral, outbox_for

BASE = "https://care.istanbul-spine.example"
URL = re.compile(r"https?://[^\s\"'<>]+")


@pytest.fixture
def messages(app, factory, monkeypatch):
    monkeypatch.setitem(app.config["CRM"], "PUBLIC_BASE_URL", BASE + "/")
    referral = new_referral(factory)
    return {(m.audience, m.channel): m for m in outbox_for(referral.id)}


def test_the_sms_link_is_a_short_link_on_the_public_address(messages):
    [link] = URL.findall(messages[("patient", "sms")].body_text)
    assert re.fullmatch(rf"{re.escape(BASE)}/s/[A-Za-z0-9]{{12}}", link)


def test_every_link_in_the_patients_email_is_on_the_public_address(messages):
    email = messages[("patient", "email")]
    found = URL.findall(email.body_text)
    assert any(f"{BASE}/p/" in url for url in found)
    assert any(f"{BASE}/unsubscribe/" in url for url in found)
    assert all(url.startswith(BASE + "/") for url in found)


def test_the_coordinators_email_links_the_console_on_the_public_address(messages):
    [notice] = [m for (audience, _), m in messages.items() if audience == "coordinator"]
    assert all(url.startswith(f"{BASE}/console/") for url in URL.findall(notice.body_text))


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
@pytest.mark.parametrize(
    ("environment", "expected"),
    [({}, "http://127.0.0.1:5101"), ({"CRM_PUBLIC_BASE_URL": BASE}, BASE)],
)
def test_make_derives_the_public_address_from_host_and_port_unless_it_is_set(environment, expected):
    env = {k: v for k, v in os.environ.items() if k != "CRM_PUBLIC_BASE_URL"} | environment
    shown = subprocess.run(
        ["make", "-s", "--no-print-directory", "--eval", "base: ; @echo $$CRM_PUBLIC_BASE_URL",
         "base", "PORT=5101"],
        cwd=ROOT, env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert shown.stdout.strip() == expected
