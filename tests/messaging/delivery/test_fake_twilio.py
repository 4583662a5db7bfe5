"""The fake Twilio server, exercised through the official SDK (what production uses)."""

import time
from datetime import UTC, datetime, timedelta

import pytest
import requests
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from crm.messaging.delivery.sms import RebasingHttpClient
from tests.fakes.twilio_server import FakeTwilio

TO = "+905321234567"


@pytest.fixture
def client(fake_twilio: FakeTwilio):
    http = RebasingHttpClient(fake_twilio.base_url, timeout=2.0)
    yield Client(fake_twilio.account_sid, fake_twilio.auth_token, http_client=http)
    http.close()


def test_the_sdk_creates_a_message_and_the_fake_records_the_form(client, fake_twilio):
    msg = client.messages.create(
        to=TO, from_="+15005550006", body="hello", status_callback="https://crm.test/cb"
    )
    assert msg.sid.startswith("SM") and len(msg.sid) == 34
    assert (msg.status, msg.to, msg.body, msg.date_sent) == ("queued", TO, "hello", None)
    [request] = fake_twilio.posts()
    assert request.path == f"/2010-04-01/Accounts/{fake_twilio.account_sid}/Messages.json"
    assert request.form == {
        "To": TO,
        "From": "+15005550006",
        "Body": "hello",
        "StatusCallback": "https://crm.test/cb",
    }
    assert request.username == fake_twilio.account_sid


def test_a_messaging_service_send_is_accepted(client, fake_twilio):
    msg = client.messages.create(to=TO, messaging_service_sid="MG" + "1" * 32, body="hi")
    assert msg.status == "accepted"
    assert msg.messaging_service_sid == "MG" + "1" * 32
    assert fake_twilio.messages[0]["from"] is None


def test_listing_pages_through_every_message_to_a_number(client, fake_twilio):
    for i in range(7):
        client.messages.create(to=TO, from_="+15005550006", body=f"m{i}")
    client.messages.create(to="+4915112345678", from_="+15005550006", body="other")
    found = client.messages.list(to=TO, page_size=3)
    assert sorted(m.body for m in found) == [f"m{i}" for i in range(7)]
    assert all(m.status == "sent" and m.date_sent is not None for m in found)
    pages = [r for r in fake_twilio.requests if r.method == "GET"]
    assert [r.query.get("Page", "0") for r in pages] == ["0", "1", "2"]


def test_listing_filters_by_date_sent(client, fake_twilio):
    client.messages.create(to=TO, from_="+15005550006", body="now")
    today = datetime.now(UTC)
    assert len(client.messages.list(to=TO, date_sent_after=today - timedelta(minutes=1))) == 1
    assert client.messages.list(to=TO, date_sent_after=today + timedelta(minutes=1)) == []
    tomorrow = (today + timedelta(days=1)).strftime("%Y-%m-%d")
    assert client.messages.list(to=TO, date_sent_after=tomorrow) == []
    assert len(client.messages.list(to=TO, date_sent_before=tomorrow)) == 1


def test_a_message_can_be_fetched_by_sid(client):
    sid = client.messages.create(to=TO, from_="+15005550006", body="x").sid
    assert client.messages(sid).fetch().body == "x"


@pytest.mark.parametrize(
    ("status", "code"), [(400, 21610), (400, 21211), (400, 21614), (429, 20429), (500, 20500)]
)
def test_programmed_errors_arrive_as_twilio_rest_exceptions(client, fake_twilio, status, code):
    fake_twilio.program(status=status, code=code)
    with pytest.raises(TwilioRestException) as caught:
        client.messages.create(to=TO, from_="+15005550006", body="x")
    assert (caught.value.status, caught.value.code) == (status, code)
    assert fake_twilio.messages == []
    client.messages.create(to=TO, from_="+15005550006", body="x")  # the rule was used up
    assert len(fake_twilio.messages) == 1


def test_a_rule_can_target_one_recipient_and_repeat(client, fake_twilio):
    fake_twilio.program(status=400, code=21614, to="+15550000000", times=None)
    for _ in range(2):
        with pytest.raises(TwilioRestException):
            client.messages.create(to="+15550000000", from_="+15005550006", body="x")
    client.messages.create(to=TO, from_="+15005550006", body="x")
    assert [m["to"] for m in fake_twilio.messages] == [TO]


def test_the_fake_validates_like_twilio(client, fake_twilio):
    with pytest.raises(TwilioRestException) as caught:
        client.messages.create(to="12345", from_="+15005550006", body="x")
    assert caught.value.code == 21211
    with pytest.raises(TwilioRestException) as caught:
        client.messages.create(to=TO, body="x")
    assert caught.value.code == 21603


def test_a_wrong_token_is_refused(fake_twilio):
    http = RebasingHttpClient(fake_twilio.base_url, timeout=2.0)
    wrong = Client(fake_twilio.account_sid, "not-the-token", http_client=http)
    with pytest.raises(TwilioRestException) as caught:
        wrong.messages.create(to=TO, from_="+15005550006", body="x")
    http.close()
    assert (caught.value.status, caught.value.code) == (401, 20003)


def test_a_delay_longer_than_the_timeout_times_out_but_the_message_exists(fake_twilio):
    fake_twilio.program(delay=0.5)
    http = RebasingHttpClient(fake_twilio.base_url, timeout=0.2)
    slow = Client(fake_twilio.account_sid, fake_twilio.auth_token, http_client=http)
    with pytest.raises(requests.Timeout):
        slow.messages.create(to=TO, from_="+15005550006", body="late")
    http.close()
    deadline = datetime.now(UTC) + timedelta(seconds=3)
    while not fake_twilio.messages and datetime.now(UTC) < deadline:
        time.sleep(0.02)
    assert [m["body"] for m in fake_twilio.messages] == ["late"]


def test_the_rebasing_client_refuses_hosts_that_are_not_twilio(fake_twilio):
    http = RebasingHttpClient(fake_twilio.base_url)
    with pytest.raises(ValueError, match="non-Twilio"):
        http.request("GET", "https://example.com/2010-04-01/Accounts.json")
    http.close()
