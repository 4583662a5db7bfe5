"""POST /api/v1/duplicates/{id}/merge (and its GET preview): staff only, problem+json
refusals, retry-safe with an Idempotency-Key; and what still works by the old ids."""

from __future__ import annotations

import itertools

import pytest
from twilio.request_validator import RequestValidator

from crm.duplicates.models import DuplicateMatch
from crm.patients.links import unsubscribe_url
from crm.patients.models import Patient
from crm.privacy.operations import set_hold
from tests.helpers import API, assert_problem
from tests.merges.support import likely_pair
from tests.messaging.support import NO_QUIET_HOURS

TOKEN = "merge-webhook-token"
_sids = itertools.count(1)


def _merge(client, caller, match_id: int, **headers: str):
    return client.post(f"{API}/duplicates/{match_id}/merge", headers=caller.headers(**headers))


def test_a_coordinator_merges_and_reads_what_happened(client, session, factory, coordinator):
    pair = likely_pair(factory, factory.agency(), factory.agency(), known={"email": None})
    merged_id = pair.new.patient_id
    response = _merge(client, coordinator, pair.match.id)
    assert response.status_code == 200, response.json
    body = response.json
    assert body["match"]["status"] == "merged"
    assert body["survivor"]["id"] == pair.known.patient_id
    assert body["merged"]["id"] == merged_id
    assert body["referral_ids"] == [pair.new.id]
    assert body["filled"] == ["email"]
    by_channel = {c["channel"]: c for c in body["consents"]}
    assert by_channel["sms"] == {
        "channel": "sms",
        "survivor": True,
        "merged": True,
        "result": True,
        "reason": "granted",
    }


def test_the_preview_says_what_would_happen_and_changes_nothing(
    client, session, factory, coordinator
):
    pair = likely_pair(factory, factory.agency(), factory.agency())
    response = client.get(f"{API}/duplicates/{pair.match.id}/merge", headers=coordinator.headers())
    assert response.status_code == 200, response.json
    assert response.json["refused"] is None
    assert response.json["survivor"]["id"] == pair.known.patient_id
    session.expire_all()
    assert session.get(DuplicateMatch, pair.match.id).status == "open"


def test_the_old_referral_is_still_read_by_its_id_and_its_agency(
    client, session, factory, coordinator
):
    first, second = factory.agency(), factory.agency()
    pair = likely_pair(factory, first, second)
    _merge(client, coordinator, pair.match.id)
    seen = client.get(f"{API}/referrals/{pair.new.id}", headers=second.headers())
    assert seen.status_code == 200
    assert seen.json["attribution"] == "already_in_care"  # the first agency's patient now


def test_a_decided_match_answers_409_merge_refused(client, factory, coordinator):
    pair = likely_pair(factory, factory.agency(), factory.agency())
    client.post(f"{API}/duplicates/{pair.match.id}/dismiss", headers=coordinator.headers())
    body = assert_problem(_merge(client, coordinator, pair.match.id), 409, "merge-refused")
    assert body["refusal"] == "decided"
    assert "dismissed" in body["detail"]


def test_a_hold_on_one_patient_answers_409_with_the_reason(client, session, factory, coordinator):
    pair = likely_pair(factory, factory.agency(), factory.agency())
    set_hold(pair.known.patient_id, factory.staff("manager").actor, "a court's request")
    session.commit()
    body = assert_problem(_merge(client, coordinator, pair.match.id), 409, "merge-refused")
    assert body["refusal"] == "legal_hold"
    session.expire_all()
    assert session.get(DuplicateMatch, pair.match.id).status == "open"


def test_a_retry_with_the_same_idempotency_key_replays_the_merge(client, factory, coordinator):
    pair = likely_pair(factory, factory.agency(), factory.agency())
    first = _merge(client, coordinator, pair.match.id, **{"Idempotency-Key": "merge-1"})
    again = _merge(client, coordinator, pair.match.id, **{"Idempotency-Key": "merge-1"})
    assert first.status_code == again.status_code == 200
    assert again.json == first.json
    assert again.headers.get("Idempotent-Replayed") == "true"
    other = _merge(client, coordinator, pair.match.id, **{"Idempotency-Key": "merge-2"})
    assert assert_problem(other, 409, "merge-refused")["refusal"] == "decided"


def test_an_agency_key_cannot_merge_or_preview(client, factory):
    first, second = factory.agency(), factory.agency()
    pair = likely_pair(factory, first, second)
    assert_problem(_merge(client, second, pair.match.id), 403, "forbidden")
    preview = client.get(f"{API}/duplicates/{pair.match.id}/merge", headers=first.headers())
    assert_problem(preview, 403, "forbidden")


def test_an_unknown_match_is_404(client, coordinator):
    assert_problem(_merge(client, coordinator, 987654), 404, "not-found")


@pytest.fixture
def signed(app, client, monkeypatch):
    monkeypatch.setitem(app.config["CRM"], "TWILIO_AUTH_TOKEN", TOKEN)
    monkeypatch.setitem(app.config["CRM"], "QUIET_HOURS", NO_QUIET_HOURS)
    base = app.config["CRM"]["PUBLIC_BASE_URL"]

    def keyword(sender: str, body: str):
        form = {"MessageSid": f"SMmerge{next(_sids)}", "From": sender, "Body": body}
        signature = RequestValidator(TOKEN).compute_signature(
            base + "/webhooks/twilio/inbound", form
        )
        return client.post(
            "/webhooks/twilio/inbound", data=form, headers={"X-Twilio-Signature": signature}
        )

    return keyword


def _email_pair(factory):
    """The same email, two different phones: a likely match; the phones conflict."""
    email = f"same.{next(_sids)}@patient.example"
    return likely_pair(
        factory,
        factory.agency(),
        factory.agency(),
        known={"email": email, "phone": f"+49151{60000000 + next(_sids)}"},
        new={"email": email, "phone": f"+49151{61000000 + next(_sids)}"},
    )


def test_a_stop_from_the_merged_patients_old_number_reaches_the_survivor(
    client, session, factory, coordinator, signed
):
    pair = _email_pair(factory)
    old_number = pair.new.patient.phone
    assert _merge(client, coordinator, pair.match.id).json["conflicts"] == [
        "given_name",
        "family_name",
        "date_of_birth",
        "phone",
    ]
    assert signed(old_number, "STOP").status_code == 200
    session.expire_all()
    survivor = session.get(Patient, pair.known.patient_id)
    assert not survivor.may_contact("sms")
    assert survivor.phone != old_number  # the survivor's own number stays


def test_a_start_from_the_old_number_does_not_consent_for_the_survivors_number(
    client, session, factory, coordinator, signed
):
    pair = _email_pair(factory)
    old_number = pair.new.patient.phone
    _merge(client, coordinator, pair.match.id)
    signed(old_number, "STOP")
    signed(old_number, "START")
    session.expire_all()
    assert not session.get(Patient, pair.known.patient_id).may_contact("sms")


def test_an_unsubscribe_link_sent_before_the_merge_withdraws_the_survivors_email(
    client, session, factory, coordinator
):
    pair = likely_pair(factory, factory.agency(), factory.agency())
    path = "/" + unsubscribe_url(pair.new.patient_id).split("://", 1)[1].split("/", 1)[1]
    _merge(client, coordinator, pair.match.id)
    assert client.post(path).status_code == 200
    session.expire_all()
    assert not session.get(Patient, pair.known.patient_id).may_contact("email")


def test_the_privacy_api_by_the_merged_patients_id_answers_the_whole_person(
    client, session, factory, coordinator
):
    pair = likely_pair(factory, factory.agency(), factory.agency())
    survivor_id, merged_id = pair.known.patient_id, pair.new.patient_id
    _merge(client, coordinator, pair.match.id)
    manager = factory.staff("manager")
    status = client.get(f"{API}/patients/{merged_id}/privacy", headers=manager.headers())
    assert status.status_code == 200, status.json
    assert status.json["patient_ids"] == sorted([survivor_id, merged_id])
    assert status.json["referral_ids"] == sorted([pair.known.id, pair.new.id])
