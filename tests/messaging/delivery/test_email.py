# Test data is Turkish, Russian and Arabic text on purpose: its letters are not typos.
# ruff: noqa: RUF001
import json
import smtplib
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest

from crm.messaging.delivery.email import (
    FileMailer,
    OutgoingEmail,
    PermanentEmailError,
    SmtpMailer,
    TransientEmailError,
    build_message,
    classify_smtp_error,
)
from tests.messaging.conftest import SMTP_PASSWORD, SMTP_USER, SmtpServer

EMAIL = OutgoingEmail(
    to="ayse@example.org",
    subject="Tedavi planınız hazır",
    text="Sayın Ayşe,\n\nPlanınız hazır: https://crm.test/p/abc",
    html='<p>Sayın Ayşe,</p><p><a href="https://crm.test/p/abc">Plan</a></p>',
    unsubscribe_url="https://crm.test/unsubscribe/tok123",
    unsubscribe_mailto="unsubscribe@hospital.test?subject=tok123",
)


def received(server: SmtpServer) -> EmailMessage:
    [envelope] = server.recorder.envelopes
    return message_from_bytes(envelope.content, policy=policy.default)  # type: ignore[return-value]


def unix(text: str) -> str:
    return text.replace("\r\n", "\n")


def mailer_for(server: SmtpServer, **kwargs) -> SmtpMailer:
    defaults = {"from_address": "care@hospital.test", "security": "none", "timeout": 5}
    return SmtpMailer(server.host, server.port, **{**defaults, **kwargs})


def test_a_multipart_message_reaches_the_smtp_server(smtp_server):
    message_id = mailer_for(smtp_server).send(EMAIL)
    msg = received(smtp_server)
    assert msg.get_content_type() == "multipart/alternative"
    parts = {p.get_content_type(): unix(p.get_content()) for p in msg.iter_parts()}
    assert parts["text/plain"].strip() == EMAIL.text
    assert parts["text/html"].strip() == EMAIL.html
    assert msg["Subject"] == "Tedavi planınız hazır"
    assert msg["To"] == "ayse@example.org"
    assert msg["Message-ID"] == message_id
    assert message_id.startswith("<") and message_id.endswith("@hospital.test>")
    assert smtp_server.recorder.envelopes[0].rcpt_tos == ["ayse@example.org"]


def test_one_click_unsubscribe_headers_are_set(smtp_server):
    mailer_for(smtp_server).send(EMAIL)
    msg = received(smtp_server)
    assert msg["List-Unsubscribe"] == (
        "<mailto:unsubscribe@hospital.test?subject=tok123>, <https://crm.test/unsubscribe/tok123>"
    )
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_a_text_only_message_is_not_multipart_and_has_no_unsubscribe_post():
    msg = build_message(OutgoingEmail(to="a@b.test", subject="s", text="t"), "x@hospital.test")
    assert msg.get_content_type() == "text/plain"
    assert msg["List-Unsubscribe"] is None and msg["List-Unsubscribe-Post"] is None


def test_the_sender_name_and_extra_headers_are_kept(smtp_server):
    email = OutgoingEmail(
        to="a@b.test", subject="s", text="t", reply_to="coord@hospital.test",
        headers={"X-CRM-Message": "msg-42"},
    )  # fmt: skip
    mailer_for(smtp_server, from_name="Acme Hospital").send(email)
    msg = received(smtp_server)
    assert msg["From"] == "Acme Hospital <care@hospital.test>"
    assert msg["Reply-To"] == "coord@hospital.test"
    assert msg["X-CRM-Message"] == "msg-42"


def test_login_is_used_when_a_username_is_configured(smtp_server):
    mailer_for(smtp_server, username=SMTP_USER, password=SMTP_PASSWORD).send(EMAIL)
    assert len(smtp_server.recorder.envelopes) == 1


def test_a_wrong_password_is_transient(smtp_server):
    with pytest.raises(TransientEmailError, match="authentication"):
        mailer_for(smtp_server, username=SMTP_USER, password="wrong").send(EMAIL)
    assert smtp_server.recorder.envelopes == []


def test_starttls_upgrades_before_sending(smtp_starttls_server):
    server = smtp_starttls_server
    mailer = mailer_for(server, security="starttls", ssl_context=server.client_context)
    mailer.send(EMAIL)
    assert received(server)["Subject"] == EMAIL.subject


def test_without_starttls_a_server_that_requires_it_refuses_the_mail(smtp_starttls_server):
    with pytest.raises(PermanentEmailError) as caught:
        mailer_for(smtp_starttls_server, security="none").send(EMAIL)
    assert caught.value.code == 530
    assert smtp_starttls_server.recorder.envelopes == []


def test_implicit_tls_sends_over_an_encrypted_connection(smtp_tls_server):
    server = smtp_tls_server
    mailer_for(server, security="tls", ssl_context=server.client_context).send(EMAIL)
    assert received(server)["Message-ID"]


def test_an_untrusted_certificate_is_a_transient_error(smtp_tls_server):
    with pytest.raises(TransientEmailError, match="SSL"):
        mailer_for(smtp_tls_server, security="tls").send(EMAIL)


def test_a_refused_recipient_is_permanent(smtp_server):
    smtp_server.recorder.refuse["ayse@example.org"] = "550 5.1.1 No such user"
    with pytest.raises(PermanentEmailError) as caught:
        mailer_for(smtp_server).send(EMAIL)
    assert caught.value.code == 550


def test_a_temporarily_refused_recipient_is_transient(smtp_server):
    smtp_server.recorder.refuse["ayse@example.org"] = "451 4.7.1 Try again later"
    with pytest.raises(TransientEmailError) as caught:
        mailer_for(smtp_server).send(EMAIL)
    assert caught.value.code == 451


def test_an_unreachable_server_is_transient(smtp_server):
    mailer = SmtpMailer("127.0.0.1", 1, from_address="x@hospital.test", security="none")
    with pytest.raises(TransientEmailError, match="ConnectionRefused"):
        mailer.send(EMAIL)


def test_an_unknown_security_mode_is_refused():
    with pytest.raises(ValueError):
        SmtpMailer("localhost", 25, from_address="x@h.test", security="ssl3")


def test_an_unknown_exception_is_not_swallowed():
    with pytest.raises(KeyError):
        classify_smtp_error(KeyError("bug"))
    assert isinstance(classify_smtp_error(smtplib.SMTPServerDisconnected()), TransientEmailError)


def test_the_file_mailer_writes_the_message_as_a_json_line(tmp_path):
    path = tmp_path / "mail.jsonl"
    message_id = FileMailer(path, "care@hospital.test").send(EMAIL)
    [record] = [json.loads(line) for line in path.read_text().splitlines()]
    assert record["message_id"] == message_id
    assert record["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert (record["text"], record["html"]) == (EMAIL.text, EMAIL.html)
