import json
import logging
import socket
import stat
import time
from datetime import UTC, datetime, timedelta

import pytest

from crm.messaging.delivery.sms import (
    FileGateway,
    PermanentSmsError,
    ProviderResult,
    SmsError,
    TransientSmsError,
    TwilioGateway,
    classify_error,
    mask_phone,
)
from tests.fakes.twilio_server import FakeTwilio

TO = "+905321234567"


def test_send_returns_the_provider_sid_and_status(twilio_gateway, fake_twilio):
    result = twilio_gateway.send(TO, "There is news. Open your link", "https://crm.test/cb/1")
    assert isinstance(result, ProviderResult)
    assert result.provider_id == fake_twilio.messages[0]["sid"]
    assert result.status == "queued"
    form = fake_twilio.posts()[0].form
    assert form["From"] == "+15005550006"
    assert form["StatusCallback"] == "https://crm.test/cb/1"


def test_no_status_callback_is_sent_when_none_is_given(twilio_gateway, fake_twilio):
    twilio_gateway.send(TO, "hi")
    assert "StatusCallback" not in fake_twilio.posts()[0].form


def test_a_messaging_service_is_preferred_to_a_from_number(fake_twilio):
    service = "MG" + "2" * 32
    with TwilioGateway(
        fake_twilio.account_sid,
        fake_twilio.auth_token or "",
        messaging_service_sid=service,
        from_number="+15005550006",
        base_url=fake_twilio.base_url,
    ) as gateway:
        assert gateway.send(TO, "hi").status == "accepted"
    form = fake_twilio.posts()[0].form
    assert form["MessagingServiceSid"] == service
    assert "From" not in form


def test_a_gateway_needs_a_sender():
    with pytest.raises(ValueError, match="Messaging Service SID or a From number"):
        TwilioGateway("AC" + "0" * 32, "token")


@pytest.mark.parametrize(
    ("code", "flag"),
    [(21610, "opted_out"), (21211, "invalid_number"), (21614, "not_mobile")],
)
def test_recipient_errors_are_permanent_and_say_why(twilio_gateway, fake_twilio, code, flag):
    fake_twilio.program(status=400, code=code)
    with pytest.raises(PermanentSmsError) as caught:
        twilio_gateway.send(TO, "hi")
    error = caught.value
    assert (error.transient, error.status, error.code) == (False, 400, code)
    flags = {"opted_out", "invalid_number", "not_mobile"}
    assert getattr(error, flag) is True
    assert not any(getattr(error, other) for other in flags - {flag})


def test_another_4xx_is_permanent_without_recipient_flags(twilio_gateway, fake_twilio):
    fake_twilio.program(status=400, code=21602)
    with pytest.raises(PermanentSmsError) as caught:
        twilio_gateway.send(TO, "hi")
    assert caught.value.code == 21602
    assert not (caught.value.opted_out or caught.value.invalid_number)


@pytest.mark.parametrize(("status", "code"), [(429, 20429), (500, 20500), (503, 20500)])
def test_throttling_and_server_errors_are_transient(twilio_gateway, fake_twilio, status, code):
    fake_twilio.program(status=status, code=code)
    with pytest.raises(TransientSmsError) as caught:
        twilio_gateway.send(TO, "hi")
    assert (caught.value.status, caught.value.code, caught.value.transient) == (status, code, True)


def test_bad_credentials_are_transient_because_the_message_is_not_at_fault(fake_twilio):
    with (
        TwilioGateway(
            fake_twilio.account_sid, "wrong", from_number="+1500", base_url=fake_twilio.base_url
        ) as gateway,
        pytest.raises(TransientSmsError) as caught,
    ):
        gateway.send(TO, "hi")
    assert (caught.value.status, caught.value.code) == (401, 20003)


def test_a_timeout_is_transient(fake_twilio):
    fake_twilio.program(delay=0.6)
    with (
        TwilioGateway(
            fake_twilio.account_sid,
            fake_twilio.auth_token or "",
            from_number="+15005550006",
            timeout=0.2,
            base_url=fake_twilio.base_url,
        ) as gateway,
        pytest.raises(TransientSmsError, match="Timeout"),
    ):
        gateway.send(TO, "hi")


def test_a_refused_connection_is_transient():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with (
        TwilioGateway(
            "AC" + "0" * 32,
            "t",
            from_number="+1500",
            timeout=1,
            base_url=f"http://127.0.0.1:{port}",
        ) as gateway,
        pytest.raises(TransientSmsError, match="ConnectionError"),
    ):
        gateway.send(TO, "hi")


def test_an_unknown_exception_is_not_swallowed():
    with pytest.raises(KeyError):
        classify_error(KeyError("bug"))


def test_a_timed_out_send_can_be_reconciled_from_the_provider(fake_twilio):
    claimed_at = datetime.now(UTC)
    fake_twilio.program(delay=0.5)
    with TwilioGateway(
        fake_twilio.account_sid,
        fake_twilio.auth_token or "",
        from_number="+15005550006",
        timeout=0.2,
        base_url=fake_twilio.base_url,
    ) as gateway:
        with pytest.raises(TransientSmsError):
            gateway.send(TO, "news: open your link")
        time.sleep(0.6)
        found = gateway.messages_to(TO, since=claimed_at)
    assert [(m.provider_id, m.body) for m in found] == [
        (fake_twilio.messages[0]["sid"], "news: open your link")
    ]
    get = next(r for r in fake_twilio.requests if r.method == "GET")
    assert get.query["To"] == TO
    assert get.query["DateSent>"] == (claimed_at - timedelta(days=1, minutes=5)).strftime(
        "%Y-%m-%d"
    )


def test_reconciliation_ignores_older_messages_and_other_numbers(twilio_gateway, fake_twilio):
    twilio_gateway.send(TO, "old")
    fake_twilio.messages[0]["date_created"] -= timedelta(hours=1)
    twilio_gateway.send(TO, "new")
    twilio_gateway.send("+4915112345678", "someone else")
    found = twilio_gateway.messages_to(TO, since=datetime.now(UTC) - timedelta(minutes=1))
    assert [m.body for m in found] == ["new"]
    assert found[0].created_at is not None


def test_reconciliation_errors_are_classified(twilio_gateway, fake_twilio):
    fake_twilio.program(status=500, method="GET")
    with pytest.raises(TransientSmsError):
        twilio_gateway.messages_to(TO, datetime.now(UTC))


def test_the_file_gateway_appends_json_lines_and_logs_a_masked_number(tmp_path, caplog):
    path = tmp_path / "var" / "sms.jsonl"
    gateway = FileGateway(path)
    with caplog.at_level(logging.INFO, logger="crm.messaging.delivery.sms"):
        first = gateway.send(TO, "news: open your link", "https://crm.test/cb")
        gateway.send("+4915112345678", "second")
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [line["body"] for line in lines] == ["news: open your link", "second"]
    assert lines[0]["provider_id"] == first.provider_id and first.status == "sent"
    assert lines[0]["status_callback"] == "https://crm.test/cb"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    logged = " ".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert TO not in logged and "5321234567" not in logged
    assert mask_phone(TO) in logged


def test_the_file_gateway_reconciles_from_its_own_file(tmp_path):
    gateway = FileGateway(tmp_path / "sms.jsonl")
    assert gateway.messages_to(TO, datetime.now(UTC)) == []
    sent = gateway.send(TO, "a")
    gateway.send("+4915112345678", "b")
    found = gateway.messages_to(TO, datetime.now(UTC) - timedelta(seconds=5))
    assert [(m.provider_id, m.body) for m in found] == [(sent.provider_id, "a")]
    assert gateway.messages_to(TO, datetime.now(UTC) + timedelta(hours=1)) == []


@pytest.mark.parametrize(
    ("number", "masked"),
    [("+905321234567", "+90********67"), ("+4915112345678", "+49*********78"), ("123", "***")],
)
def test_mask_phone_keeps_only_the_country_prefix_and_last_two_digits(number, masked):
    assert mask_phone(number) == masked


def test_every_gateway_error_is_an_sms_error():
    assert issubclass(TransientSmsError, SmsError) and issubclass(PermanentSmsError, SmsError)


def test_the_fake_is_isolated_per_test(fake_twilio: FakeTwilio):
    assert fake_twilio.messages == [] and fake_twilio.requests == []
