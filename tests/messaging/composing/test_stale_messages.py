"""A message written for a stage is not sent once the referral has left that stage."""

from __future__ import annotations

import pytest
from sqlalchemy import update

from crm.messaging.composing.outbox import enqueue
from crm.messaging.delivery.dispatcher import Dispatcher, DispatchSettings
from crm.messaging.delivery.transports import Transports
from crm.nudges.models import NudgeRule
from crm.referrals.models import Referral
from crm.referrals.operations import move_to_stage
from tests.helpers import API
from tests.messaging.support import (
    NO_QUIET_HOURS,
    RecordingGateway,
    RecordingMailer,
    new_referral,
    outbox_for,
    quiet_outbox,
)


@pytest.fixture
def coordinator(factory):
    return factory.staff("coordinator")


@pytest.fixture
def referral(factory):
    return new_referral(factory, patient={"language": "en"})


def test_the_outbox_row_remembers_the_stage_visit_it_was_written_for(referral):
    [sms] = outbox_for(referral.id, kind="enquiry_received_patient", channel="sms")
    assert (sms.stage, sms.stage_entered_at) == ("enquiry", referral.stage_entered_at)
    assert sms.stands is False


def test_leaving_a_stage_cancels_the_patients_queued_messages_of_that_stage(
    session, referral, coordinator
):
    move_to_stage(referral, "awaiting_mri", coordinator.actor)
    thanks = outbox_for(referral.id, kind="enquiry_received_patient")
    assert {(m.channel, m.status, m.suppressed_reason) for m in thanks} == {
        ("sms", "cancelled", "moved on"),
        ("email", "cancelled", "moved on"),
    }


def test_a_message_to_the_coordinator_stands_when_the_referral_moves_on(referral, coordinator):
    move_to_stage(referral, "awaiting_mri", coordinator.actor)
    [notice] = outbox_for(referral.id, kind="enquiry_received_coordinator")
    assert notice.status == "queued"


def test_a_message_whose_rule_stands_survives_the_move(session, factory, coordinator):
    session.execute(
        update(NudgeRule)
        .where(NudgeRule.code == "enquiry_thank_you")
        .values(stop_when_stage_changes=False)
    )
    referral = new_referral(factory)
    move_to_stage(referral, "awaiting_mri", coordinator.actor)
    thanks = outbox_for(referral.id, kind="enquiry_received_patient")
    assert {m.status for m in thanks} == {"queued"}
    assert all(m.stands for m in thanks)


def test_a_coordinators_own_message_stands_when_the_referral_moves_on(
    client, session, referral, coordinator
):
    response = client.post(
        f"{API}/referrals/{referral.id}/messages",
        json={"channels": ["email"], "subject": "Hello", "message": "We called you today."},
        headers=coordinator.headers(),
    )
    assert response.status_code == 201, response.json
    move_to_stage(referral, "awaiting_mri", coordinator.actor)
    [own] = outbox_for(referral.id, kind="ad_hoc")
    assert own.status == "queued"


def test_a_message_already_sent_is_left_as_it_is(session, referral, coordinator):
    [sms] = outbox_for(referral.id, kind="enquiry_received_patient", channel="sms")
    sms.status = "sent"
    session.flush()
    move_to_stage(referral, "awaiting_mri", coordinator.actor)
    session.refresh(sms)
    assert sms.status == "sent"


@pytest.fixture
def dispatcher(app, monkeypatch):
    monkeypatch.setitem(app.config["CRM"], "QUIET_HOURS", NO_QUIET_HOURS)
    gateway, mailer = RecordingGateway(), RecordingMailer()
    settings = DispatchSettings(quiet_hours=NO_QUIET_HOURS)
    return Dispatcher(Transports(gateway, mailer, None), settings, name="stale-test")


def test_the_dispatcher_cancels_a_queued_message_whose_referral_has_left_its_stage(
    session, referral, dispatcher
):
    quiet_outbox()
    [sms] = enqueue(
        referral,
        kind="mri_reminder",
        audience="patient",
        channels=["sms"],
        key="stale:1",
        fallback=False,
    ).messages
    # The referral moved by a path that did not clean up after itself (or the move
    # committed while this row waited): the dispatcher looks again before sending.
    session.execute(update(Referral).where(Referral.id == referral.id).values(stage="awaiting_mri"))
    session.commit()
    dispatcher.run_once()
    session.refresh(sms)
    assert (sms.status, sms.suppressed_reason) == ("cancelled", "moved on")
    assert dispatcher.transports.sms.sent == []


def test_the_dispatcher_sends_a_message_of_the_stage_the_referral_is_in(
    session, referral, dispatcher
):
    quiet_outbox()
    [sms] = enqueue(
        referral,
        kind="mri_reminder",
        audience="patient",
        channels=["sms"],
        key="current:1",
        fallback=False,
    ).messages
    session.commit()
    dispatcher.run_once()
    session.refresh(sms)
    assert sms.status == "sent"
    assert len(dispatcher.transports.sms.sent) == 1
