"""The messaging API: staff timeline, agency delivery summaries, ad-hoc sends, rule admin."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from twilio.request_validator import RequestValidator

from crm.core.audit import AuditEvent
from crm.core.db import utcnow
from crm.core.errors import PROBLEM_MEDIA_TYPE, PROBLEM_TYPE_BASE
from crm.messaging.composing.spend import sms_counted
from tests.messaging.support import NO_QUIET_HOURS, outbox_for

API = "/api/v1"


@pytest.fixture(autouse=True)
def _daytime(app, monkeypatch):
    monkeypatch.setitem(app.config["CRM"], "QUIET_HOURS", NO_QUIET_HOURS)


@pytest.fixture
def referral(factory, agency):
    return factory.referral(agency, patient={"phone": "+905321234567", "language": "en"})


def _problem(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM_MEDIA_TYPE
    body = response.get_json()
    assert body["type"] == PROBLEM_TYPE_BASE + code and body["status"] == status
    return body


def _fields(body: dict) -> set[str]:
    return {error["field"] for error in body["errors"]}


def test_staff_see_the_timeline_with_outbound_and_inbound(
    app, client, referral, coordinator, monkeypatch
):
    token = "api-test-token"
    monkeypatch.setitem(app.config["CRM"], "TWILIO_AUTH_TOKEN", token)
    url = app.config["CRM"]["PUBLIC_BASE_URL"] + "/webhooks/twilio/inbound"
    form = {"MessageSid": "SMapi1", "From": "+905321234567", "Body": "Thank you, see you soon"}
    signature = RequestValidator(token).compute_signature(url, form)
    assert (
        client.post(
            "/webhooks/twilio/inbound", data=form, headers={"X-Twilio-Signature": signature}
        ).status_code
        == 200
    )
    response = client.get(f"{API}/referrals/{referral.id}/messages", headers=coordinator.headers())
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    kinds = sorted((m["kind"], m["channel"]) for m in body["outbound"])
    assert kinds == [
        ("enquiry_received_coordinator", "email"),
        ("enquiry_received_patient", "email"),
        ("enquiry_received_patient", "sms"),
    ]
    sms = next(m for m in body["outbound"] if m["channel"] == "sms")
    assert sms["status"] == "queued" and sms["to_address"] == "+905321234567"
    assert sms["body_text"] and sms["segments"] >= 1
    [inbound] = body["inbound"]
    assert (inbound["body"], inbound["classification"]) == ("Thank you, see you soon", "reply")


def test_an_agency_cannot_read_message_bodies(client, referral, agency):
    response = client.get(f"{API}/referrals/{referral.id}/messages", headers=agency.headers())
    _problem(response, 403, "forbidden")


def test_an_agency_sees_delivery_statuses_but_no_bodies_or_addresses(
    client, referral, agency, session
):
    [sms] = outbox_for(referral.id, channel="sms")
    sms.status, sms.delivered_at = "delivered", utcnow()
    session.commit()
    response = client.get(f"{API}/referrals/{referral.id}/deliveries", headers=agency.headers())
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert body["counts"] == {"delivered": 1, "queued": 1}  # the patient's sms and email
    assert {m["audience"] for m in body["messages"]} == {"patient"}  # not the hospital's own
    text = response.get_data(as_text=True)
    patient = referral.patient
    for secret in (patient.phone, patient.email, sms.body_text[:20], "body_text", "to_address"):
        assert secret not in text
    assert {m["status"] for m in body["messages"]} == {"delivered", "queued"}
    assert set(body["messages"][0]) <= {
        "id",
        "kind",
        "audience",
        "channel",
        "status",
        "suppressed_reason",
        "created_at",
        "sent_at",
        "delivered_at",
    }


def test_another_agencys_deliveries_are_404(client, factory, referral):
    stranger = factory.agency()
    response = client.get(f"{API}/referrals/{referral.id}/deliveries", headers=stranger.headers())
    _problem(response, 404, "not-found")


def test_staff_may_read_deliveries_too(client, referral, coordinator):
    response = client.get(
        f"{API}/referrals/{referral.id}/deliveries", headers=coordinator.headers()
    )
    assert response.status_code == 200


def _ad_hoc(client, referral, caller, **body):
    payload = {"subject": "Your appointment", "message": "Please call us about your dates.", **body}
    return client.post(
        f"{API}/referrals/{referral.id}/messages", json=payload, headers=caller.headers()
    )


def test_an_ad_hoc_message_goes_through_the_same_rules(client, referral, coordinator, session):
    response = _ad_hoc(client, referral, coordinator)
    assert response.status_code == 201, response.get_data(as_text=True)
    rows = response.get_json()
    assert sorted(m["channel"] for m in rows) == ["email", "sms"]
    by_channel = {m["channel"]: m for m in rows}
    assert "Please call us" not in by_channel["sms"]["body_text"]
    assert "Please call us" in by_channel["email"]["body_text"]
    assert {m["kind"] for m in rows} == {"ad_hoc"}
    assert {m.kind for m in outbox_for(referral.id, status="queued")} >= {"ad_hoc"}


def test_an_ad_hoc_message_respects_consent_and_fallback(client, factory, agency, coordinator):
    referral = factory.referral(
        agency, patient={"consents": {"sms": False, "email": True, "source": "form"}}
    )
    response = _ad_hoc(client, referral, coordinator, channels=["sms"], fallback=False)
    assert response.status_code == 201
    [row] = response.get_json()
    assert (row["status"], row["suppressed_reason"]) == ("suppressed", "no_consent")
    response = _ad_hoc(client, referral, coordinator, channels=["sms", "email"], fallback=True)
    [row] = response.get_json()
    assert (row["channel"], row["status"]) == ("email", "queued")


def test_an_ad_hoc_sms_over_the_cap_is_429_and_writes_nothing(
    app, client, referral, coordinator, monkeypatch
):
    monkeypatch.setitem(
        app.config["CRM"],
        "SMS_CAP_GLOBAL_HOURLY",
        sms_counted(utcnow()),
    )
    before = len(outbox_for(referral.id))
    response = _ad_hoc(client, referral, coordinator)
    body = _problem(response, 429, "rate-limited")
    assert body["cap"] == "global_hourly"
    assert len(outbox_for(referral.id)) == before, "the email of the same send is not written"


def test_an_agency_cannot_send_ad_hoc_messages(client, referral, agency):
    _problem(_ad_hoc(client, referral, agency), 403, "forbidden")


def test_an_ad_hoc_message_needs_a_subject_and_text(client, referral, coordinator):
    response = client.post(
        f"{API}/referrals/{referral.id}/messages",
        json={"channels": ["fax"]},
        headers=coordinator.headers(),
    )
    body = _problem(response, 422, "validation-failed")
    assert {"subject", "message"} <= _fields(body)
    assert any(field.startswith("channels") for field in _fields(body))


# -- nudge rule admin ------------------------------------------------------------------------

RULE = {
    "code": "plan_reminder_day_10",
    "description": "A second plan reminder.",
    "trigger": "stage_entered",
    "stage": "plan_offered",
    "offset_minutes": 14400,
    "audience": "patient",
    "channels": ["sms", "email"],
    "kind": "plan_unanswered_patient",
}


def test_a_manager_lists_the_rules(client, factory):
    manager = factory.staff("manager")
    response = client.get(f"{API}/nudge-rules", headers=manager.headers())
    assert response.status_code == 200
    codes = [rule["code"] for rule in response.get_json()]
    assert "mri_missing_reminder" in codes and codes == sorted(codes)


def test_a_coordinator_may_not_see_or_change_rules(client, coordinator):
    _problem(client.get(f"{API}/nudge-rules", headers=coordinator.headers()), 403, "forbidden")
    response = client.post(f"{API}/nudge-rules", json=RULE, headers=coordinator.headers())
    _problem(response, 403, "forbidden")
    response = client.patch(
        f"{API}/nudge-rules/mri_missing_reminder",
        json={"active": False},
        headers=coordinator.headers(),
    )
    _problem(response, 403, "forbidden")


def test_a_manager_may_not_create_rules(client, factory):
    manager = factory.staff("manager")
    response = client.post(f"{API}/nudge-rules", json=RULE, headers=manager.headers())
    _problem(response, 403, "forbidden")


def test_an_admin_creates_a_rule_and_a_duplicate_code_is_409(client, factory):
    admin = factory.staff("admin")
    response = client.post(f"{API}/nudge-rules", json=RULE, headers=admin.headers())
    assert response.status_code == 201, response.get_data(as_text=True)
    created = response.get_json()
    assert created["code"] == RULE["code"] and created["max_repeats"] == 0
    assert created["active"] is True and created["fallback"] is True
    again = client.post(f"{API}/nudge-rules", json=RULE, headers=admin.headers())
    _problem(again, 409, "conflict")


def test_a_created_rule_applies_to_referrals_entering_its_stage(client, factory, agency, session):
    admin = factory.staff("admin")
    rule = {**RULE, "stage": "enquiry", "offset_minutes": 0, "code": "enquiry_extra"}
    assert client.post(f"{API}/nudge-rules", json=rule, headers=admin.headers()).status_code == 201
    referral = factory.referral(agency)
    assert outbox_for(referral.id, rule_code="enquiry_extra")


@pytest.mark.parametrize(
    ("change", "fields"),
    [
        ({"stage": None}, {"stage"}),
        ({"trigger": "date", "stage": None}, {"date_name"}),
        ({"trigger": "date", "date_name": "travel_date"}, {"stage"}),
        ({"date_name": "travel_date"}, {"date_name"}),
        ({"max_repeats": 2}, {"repeat_every_minutes"}),
        ({"audience": "coordinator"}, {"channels"}),
        ({"channels": ["sms", "sms"]}, {"channels"}),
        ({"kind": "no_such_kind"}, {"kind"}),
        ({"code": "Not Snake"}, {"code"}),
        ({"task_after_last": "x" * 201}, {"task_after_last"}),
    ],
)
def test_an_inconsistent_rule_is_422_naming_the_fields(client, factory, change, fields):
    admin = factory.staff("admin")
    response = client.post(f"{API}/nudge-rules", json={**RULE, **change}, headers=admin.headers())
    body = _problem(response, 422, "validation-failed")
    assert fields <= _fields(body), body


def test_an_admin_patches_a_rule(client, factory):
    admin = factory.staff("admin")
    response = client.patch(
        f"{API}/nudge-rules/mri_missing_reminder",
        json={"max_repeats": 4, "repeat_every_minutes": 2880, "active": False},
        headers=admin.headers(),
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert (body["max_repeats"], body["repeat_every_minutes"], body["active"]) == (4, 2880, False)
    listed = client.get(f"{API}/nudge-rules", headers=admin.headers()).get_json()
    assert next(r for r in listed if r["code"] == "mri_missing_reminder")["active"] is False


def test_a_patch_that_makes_the_rule_inconsistent_is_422_and_changes_nothing(client, factory):
    admin = factory.staff("admin")
    response = client.patch(
        f"{API}/nudge-rules/mri_missing_reminder",
        json={"repeat_every_minutes": 0},
        headers=admin.headers(),
    )
    body = _problem(response, 422, "validation-failed")
    assert "repeat_every_minutes" in _fields(body)
    listed = client.get(f"{API}/nudge-rules", headers=admin.headers()).get_json()
    assert (
        next(r for r in listed if r["code"] == "mri_missing_reminder")["repeat_every_minutes"]
        == 4320
    )


def test_patching_an_unknown_rule_is_404(client, factory):
    admin = factory.staff("admin")
    response = client.patch(
        f"{API}/nudge-rules/nope", json={"active": False}, headers=admin.headers()
    )
    _problem(response, 404, "not-found")


def test_reading_deliveries_is_audited_for_the_referral(client, referral, agency, session):
    response = client.get(f"{API}/referrals/{referral.id}/deliveries", headers=agency.headers())
    assert response.status_code == 200
    session.expire_all()
    [event] = session.scalars(
        select(AuditEvent).where(AuditEvent.action == "deliveries.read")
    ).all()
    assert (event.actor_type, event.referral_id) == ("agency", referral.id)
    assert event.detail == {"messages": len(response.get_json()["messages"])}
