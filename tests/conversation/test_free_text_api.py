"""Free text in an SMS through the API's ad-hoc endpoint (POST /referrals/{id}/messages with
`sms_text`): the health-detail screen refuses it with a 422 naming the word; clean text
goes in the SMS itself."""

from __future__ import annotations

import pytest

from crm.core.errors import PROBLEM_MEDIA_TYPE
from tests.conversation.support import unique_phone
from tests.messaging.support import outbox_for


@pytest.fixture
def referral(factory, no_quiet_hours):
    return factory.referral(factory.agency(), patient={"phone": unique_phone(), "language": "en"})


def _send(client, referral, coordinator, message: str, sms_text: bool = True):
    body = {"channels": ["sms"], "subject": "Your transfer", "message": message}
    if sms_text:
        body["sms_text"] = True
    return client.post(
        f"/api/v1/referrals/{referral.id}/messages", json=body, headers=coordinator.headers()
    )


@pytest.mark.parametrize(
    ("text", "word"),
    [
        ("How is the pain today?", "pain"),
        ("Take 400 mg of ibuprofen before the flight.", "400 mg"),
        ("Your microdiscectomy is on Monday.", "microdiscectomy"),
        ("Bacakta ağrı var mı?", "ağrı"),  # noqa: RUF001 - Turkish on purpose
    ],
)
def test_free_text_with_a_health_detail_is_422_naming_it(client, referral, coordinator, text, word):
    before = len(outbox_for(referral.id))
    response = _send(client, referral, coordinator, text)
    assert response.status_code == 422 and response.mimetype == PROBLEM_MEDIA_TYPE
    [error] = response.get_json()["errors"]
    assert error["field"] == "message"
    assert f"it says {word!r}".lower() in error["reason"].lower()
    assert len(outbox_for(referral.id)) == before


def test_clean_free_text_is_the_sms_itself(client, referral, coordinator):
    response = _send(client, referral, coordinator, "The driver is waiting at gate B.")
    assert response.status_code == 201, response.get_data(as_text=True)
    [sms] = response.get_json()
    assert (sms["kind"], sms["channel"]) == ("free_text", "sms")
    assert sms["body_text"].endswith(": The driver is waiting at gate B.")


def test_free_text_longer_than_three_segments_is_refused(client, referral, coordinator):
    response = _send(client, referral, coordinator, "gate B " * 60)
    assert response.status_code == 422
    assert "at most 320 characters" in response.get_json()["errors"][0]["reason"]


def test_without_sms_text_the_sms_still_says_only_there_is_a_message(client, referral, coordinator):
    response = _send(client, referral, coordinator, "How is the pain today?", sms_text=False)
    assert response.status_code == 201
    [sms] = response.get_json()
    assert sms["kind"] == "ad_hoc" and "pain" not in sms["body_text"]
