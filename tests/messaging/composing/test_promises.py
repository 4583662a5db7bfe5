"""Messages promise only what the product does: a reply to our email reaches the
coordinators, the visa letter is offered only when the trip has one, and the day-before
email promises no driver the trip may not have booked."""

from __future__ import annotations

from datetime import timedelta

import pytest

from crm.core.db import utcnow
from crm.messaging.composing.templates import default_catalogue
from crm.messaging.delivery.dispatcher import Dispatcher, DispatchSettings
from crm.messaging.delivery.transports import Transports
from crm.travel import operations as travel
from crm.travel.schemas import TripArgs
from tests.messaging.support import (
    NO_QUIET_HOURS,
    RecordingGateway,
    RecordingMailer,
    new_referral,
    outbox_for,
)
from tests.travel.support import accepted_referral, trip_around

LANGUAGES = ("en", "tr", "ar", "ru", "de")
CONTEXT = {
    "patient_first_name": "Jonas",
    "recipient_name": "Jonas",
    "hospital_name": "Istanbul Spine Centre",
    "hospital_phone": "+90 212 000 00 00",
    "link": "https://care.istanbul-spine.example/p/token",
    "travel_date": utcnow().date(),
    "unsubscribe_url": None,
    "pre_travel_checklist": ["Passport"],
    "pre_operative_instructions": ["Nothing to eat from midnight"],
}
DRIVER = ("driver", "Fahrer", "Şoför", "водитель", "سائق")


def test_a_reply_to_a_patients_email_goes_to_the_coordinators_inbox(app, factory):
    referral = new_referral(factory)
    settings = {**app.config["CRM"], "QUIET_HOURS": NO_QUIET_HOURS}
    mailer = RecordingMailer()
    dispatcher = Dispatcher(
        Transports(RecordingGateway(), mailer, None), DispatchSettings.from_config(settings)
    )
    dispatcher.run_once(utcnow() + timedelta(minutes=1))
    by_address = {email.to: email for email in mailer.sent}
    assert by_address[referral.patient.email].reply_to == settings["COORDINATOR_EMAIL"]
    staff = [email for to, email in by_address.items() if to != referral.patient.email]
    assert staff and all(email.reply_to is None for email in staff)


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_day_before_email_promises_no_driver(language):
    text = default_catalogue().render("travel_in_1_day", "email", language, CONTEXT).text
    assert not [word for word in DRIVER if word.lower() in text.lower()], text


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_visa_letter_is_offered_only_when_the_trip_has_one(language):
    catalogue = default_catalogue()

    def text(needed: bool) -> str:
        context = {**CONTEXT, "visa_letter_needed": needed}
        return catalogue.render("travel_booked_patient", "email", language, context).text

    assert text(True) != text(False)


@pytest.mark.usefixtures("without_clinical_guards")
@pytest.mark.parametrize(  # the factory's patient reads German
    ("needed", "says"), [(True, "können Sie dort herunterladen"), (False, "sagen Sie es uns")]
)
def test_the_booking_email_knows_whether_there_is_a_visa_letter(
    factory, agency, coordinator, needed, says
):
    referral = accepted_referral(factory, agency, coordinator)
    payload = trip_around(utcnow() + timedelta(days=30), visa_letter_needed=needed)
    travel.book_trip(referral, TripArgs().load(payload), coordinator.actor)
    [email] = outbox_for(referral.id, kind="travel_booked_patient", channel="email")
    assert says in email.body_text
