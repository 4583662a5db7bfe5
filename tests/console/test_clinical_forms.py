"""The clinical forms of the referral page: review, plan, travel, stay, through the console.

Each form loads the API's schema and runs the API's operation: the happy path writes what
the API writes and moves the stage as the API does; a refusal keeps what was typed, with
the reason next to its field; the roles are the API's.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from zoneinfo import ZoneInfo

import pyotp
import pytest
from sqlalchemy import select

from crm.console import clinical_forms as forms
from crm.core.audit import AuditEvent
from crm.core.db import utcnow
from crm.plans.models import TreatmentPlan
from crm.plans.operations import accept_plan, offer_plan
from crm.plans.schemas import PlanArgs
from crm.reviews.models import Review
from crm.travel import operations as travel
from crm.travel.models import Trip
from crm.travel.schemas import TripArgs
from tests.console.support import csrf_token, sign_in, staff_with_password
from tests.plans.support import CONSENTS, in_review, patient_of, plan_body, reviewed_as_candidate
from tests.travel.support import INBOUND, OUTBOUND, trip_around

pytestmark = pytest.mark.usefixtures("no_quiet_hours")


def _signed_in(client, session, role: str):
    """Signed in as a new user of `role` (a manager enrols the second factor first)."""
    user = staff_with_password(session, role)
    sign_in(client, user.email)
    if role in ("manager", "admin"):
        page = _text(client.get("/console/enrol"))
        secret = re.search(r'<code class="secret">([A-Z2-7]+)</code>', page).group(1)
        totp = pyotp.TOTP(secret)
        code = totp.generate_otp(totp.timecode(utcnow()))
        assert _post(client, "/console/enrol", {"code": code}).status_code == 303
    return user


def _post(client, path: str, data: dict, form_page: str | None = None):
    token = csrf_token(client, form_page or path)
    return client.post(path, data={**data, "csrf_token": token})


def _text(response) -> str:
    return response.get_data(as_text=True)


def _offered(factory, agency, coordinator, **overrides):
    referral = reviewed_as_candidate(factory, agency, coordinator)
    offer_plan(referral, PlanArgs().load(plan_body(**overrides)), coordinator.actor)
    factory.session.commit()
    return referral


def _accepted(factory, agency, coordinator):
    referral = _offered(factory, agency, coordinator)
    plan = factory.session.scalar(
        select(TreatmentPlan).where(TreatmentPlan.referral_id == referral.id)
    )
    accept_plan(plan, dict(CONSENTS), patient_of(referral))
    factory.session.commit()
    return referral


def _booked(factory, agency, coordinator):
    """Travel booked, the inbound flight landed four days ago, admission the next day."""
    referral = _accepted(factory, agency, coordinator)
    payload = TripArgs().load(trip_around(utcnow() - timedelta(days=4)))
    travel.book_trip(referral, payload, coordinator.actor)
    factory.session.commit()
    return referral


# --- the review ----------------------------------------------------------------------

CANDIDATE_FORM = {
    "decision": "candidate",
    "findings": "Paracentral herniation compressing the S1 root",
    "disc_level": "L5-S1",
    "recommended_procedure": "microdiscectomy",
    "risks_to_discuss": "infection, recurrence",
    "notes": "",
    "request_to_patient": "",
}


def test_a_specialist_records_a_candidate_review_and_the_case_stays_for_a_plan(
    client, session, factory, agency, coordinator
):
    referral = in_review(factory, agency, coordinator)
    _signed_in(client, session, "specialist")
    response = _post(client, f"/console/referrals/{referral.id}/review", CANDIDATE_FORM)
    assert response.status_code == 303
    assert response.headers["Location"].endswith(f"/console/referrals/{referral.id}")
    review = session.scalar(select(Review).where(Review.referral_id == referral.id))
    assert (review.decision, review.recommended_procedure) == ("candidate", "microdiscectomy")
    assert review.procedure_fields == {"disc_level": "L5-S1"}
    assert review.findings == CANDIDATE_FORM["findings"]
    assert "Review recorded: Candidate." in _text(client.get(response.headers["Location"]))


def test_not_a_candidate_moves_the_referral_to_lost_as_the_api_does(
    client, session, factory, agency, coordinator
):
    referral = in_review(factory, agency, coordinator)
    _signed_in(client, session, "specialist")
    form = {**CANDIDATE_FORM, "decision": "not_a_candidate", "recommended_procedure": ""}
    _post(client, f"/console/referrals/{referral.id}/review", form)
    session.refresh(referral)
    assert referral.stage == "lost"


def test_the_review_page_shows_the_mris_dicom_metadata_and_audits_the_read(
    client, session, factory, agency, coordinator
):
    referral = in_review(factory, agency, coordinator)
    _signed_in(client, session, "specialist")
    page = client.get(f"/console/referrals/{referral.id}/review")
    assert page.status_code == 200
    text = _text(page)
    assert "MRI lumbar spine" in text and "LSPINE" in text and "2026-11-01" in text
    reads = session.scalars(
        select(AuditEvent).where(
            AuditEvent.action == "document.list", AuditEvent.referral_id == referral.id
        )
    ).all()
    assert len(reads) == 1


def test_need_more_information_without_a_request_is_refused_next_to_the_field_keeping_the_text(
    client, session, factory, agency, coordinator
):
    referral = in_review(factory, agency, coordinator)
    _signed_in(client, session, "specialist")
    form = {**CANDIDATE_FORM, "decision": "need_more_information", "findings": "Blurred T2"}
    response = _post(client, f"/console/referrals/{referral.id}/review", form)
    assert response.status_code == 422
    text = _text(response)
    assert 'id="request_to_patient-error">say what the patient should send<' in text
    assert "Blurred T2</textarea>" in text
    assert 'value="need_more_information" checked' in text
    assert session.scalar(select(Review).where(Review.referral_id == referral.id)) is None


def test_a_disc_level_not_in_the_catalogues_list_is_refused_beside_its_field(
    client, session, factory, agency, coordinator
):
    referral = in_review(factory, agency, coordinator)
    _signed_in(client, session, "specialist")
    form = {**CANDIDATE_FORM, "disc_level": "lumbar five"}
    response = _post(client, f"/console/referrals/{referral.id}/review", form)
    assert response.status_code == 422
    assert 'id="disc_level-error">&#39;lumbar five&#39; is not one of: T12-L1' in _text(response)
    assert session.scalar(select(Review).where(Review.referral_id == referral.id)) is None


def test_a_coordinator_cannot_record_a_review(client, session, factory, agency, coordinator):
    referral = in_review(factory, agency, coordinator)
    _signed_in(client, session, "coordinator")
    assert client.get(f"/console/referrals/{referral.id}/review").status_code == 403
    response = _post(
        client,
        f"/console/referrals/{referral.id}/review",
        CANDIDATE_FORM,
        form_page=f"/console/referrals/{referral.id}",
    )
    assert response.status_code == 403
    assert session.scalar(select(Review).where(Review.referral_id == referral.id)) is None


def test_a_review_outside_mri_review_is_refused_in_words(
    client, session, factory, agency, coordinator
):
    referral = factory.referral(agency)  # still an enquiry
    _signed_in(client, session, "specialist")
    response = _post(client, f"/console/referrals/{referral.id}/review", CANDIDATE_FORM)
    assert response.status_code == 409
    assert "a review is recorded while the referral is in mri_review" in _text(response)


# --- plans ---------------------------------------------------------------------------


def _plan_form(**overrides) -> dict[str, str]:
    form = {
        "procedure": "microdiscectomy",
        "hospital": "Istanbul Spine Centre",
        "surgeon": "Op. Dr. Example",
        "currency": "EUR",
        "items-0-kind": "surgery",
        "items-0-description": "Microdiscectomy",
        "items-0-quantity": "1",
        "items-0-amount": "6500.50",
        "items-1-kind": "hospital_night",
        "items-1-description": "Hospital night",
        "items-1-quantity": "2",
        "items-1-amount": "300",
        "items-2-kind": "surgery",
        "items-2-description": "",
        "items-2-quantity": "",
        "items-2-amount": "",
        "inclusions": "surgery\nanaesthesia\n",
        "exclusions": "flights",
        "deposit": "1000",
        "valid_until": (date.today() + timedelta(days=30)).isoformat(),
        "notes_for_patient": "",
        "based_on": "0",  # the version the form was opened on
    }
    form.update(overrides)
    return form


def test_a_coordinator_offers_a_plan_in_minor_units_and_the_referral_moves_to_plan_offered(
    client, session, factory, agency, coordinator
):
    referral = reviewed_as_candidate(factory, agency, coordinator)
    _signed_in(client, session, "coordinator")
    response = _post(client, f"/console/referrals/{referral.id}/plans/new", _plan_form())
    assert response.status_code == 303
    assert response.headers["Location"].endswith(f"/console/referrals/{referral.id}/plans")
    plan = session.scalar(select(TreatmentPlan).where(TreatmentPlan.referral_id == referral.id))
    assert [(i.kind, i.quantity, i.unit_price_minor) for i in plan.items] == [
        ("surgery", 1, 650050),
        ("hospital_night", 2, 30000),
    ]
    assert (plan.total_minor, plan.deposit_minor, plan.currency) == (710050, 100000, "EUR")
    assert plan.inclusions == ["surgery", "anaesthesia"]
    session.refresh(referral)
    assert referral.stage == "plan_offered"
    versions = _text(client.get(response.headers["Location"]))
    assert "total €7,100.50" in versions  # the operation's total, said after offering


def test_an_amount_with_more_decimals_than_the_currency_has_is_refused_in_words(
    client, session, factory, agency, coordinator
):
    referral = reviewed_as_candidate(factory, agency, coordinator)
    _signed_in(client, session, "coordinator")
    form = _plan_form(**{"items-0-amount": "6500.505"})
    response = _post(client, f"/console/referrals/{referral.id}/plans/new", form)
    assert response.status_code == 422
    text = _text(response)
    assert 'id="items-0-amount-error">has more decimals than EUR has: at most 2 decimal(s)<' in text
    assert 'value="6500.505"' in text and 'value="Hospital night"' in text
    assert (
        session.scalar(select(TreatmentPlan).where(TreatmentPlan.referral_id == referral.id))
        is None
    )


def test_a_currency_without_minor_units_takes_whole_amounts_only(
    client, session, factory, agency, coordinator
):
    referral = reviewed_as_candidate(factory, agency, coordinator)
    _signed_in(client, session, "coordinator")
    form = _plan_form(currency="JPY", **{"items-1-amount": "300.5"}, deposit="100")
    response = _post(client, f"/console/referrals/{referral.id}/plans/new", form)
    assert response.status_code == 422
    assert "has more decimals than JPY has: no decimals" in _text(response)


def test_the_schemas_refusals_land_next_to_their_fields(
    client, session, factory, agency, coordinator
):
    referral = reviewed_as_candidate(factory, agency, coordinator)
    _signed_in(client, session, "coordinator")
    form = _plan_form(valid_until="2020-01-01", deposit="999999", hospital="")
    response = _post(client, f"/console/referrals/{referral.id}/plans/new", form)
    assert response.status_code == 422
    text = _text(response)
    assert 'id="valid_until-error">must be a future date (UTC)<' in text
    assert 'id="hospital-error">' in text
    assert 'value="2020-01-01"' in text


def test_a_deposit_above_the_total_is_refused_on_the_deposit(
    client, session, factory, agency, coordinator
):
    referral = reviewed_as_candidate(factory, agency, coordinator)
    _signed_in(client, session, "coordinator")
    response = _post(
        client, f"/console/referrals/{referral.id}/plans/new", _plan_form(deposit="999999")
    )
    assert response.status_code == 422
    assert 'id="deposit-error">may not exceed the plan&#39;s total<' in _text(response)


def test_the_new_version_form_is_filled_in_from_the_latest_version(
    client, session, factory, agency, coordinator
):
    referral = _offered(factory, agency, coordinator, hospital="Bosphorus Spine Clinic")
    _signed_in(client, session, "coordinator")
    page = _text(client.get(f"/console/referrals/{referral.id}/plans/new"))
    assert "Filled in from version 1" in page
    assert 'value="Bosphorus Spine Clinic"' in page
    assert 'id="items-0-amount" name="items-0-amount" value="6500.00"' in page
    assert 'id="items-1-quantity" name="items-1-quantity" value="2"' in page


def test_a_second_version_supersedes_the_first_and_the_versions_say_what_changed(
    client, session, factory, agency, coordinator
):
    referral = _offered(factory, agency, coordinator)
    _signed_in(client, session, "coordinator")
    form = _plan_form(based_on="1", **{"items-0-amount": "6000"})
    _post(client, f"/console/referrals/{referral.id}/plans/new", form)
    statuses = session.scalars(
        select(TreatmentPlan.status)
        .where(TreatmentPlan.referral_id == referral.id)
        .order_by(TreatmentPlan.version)
    ).all()
    assert statuses == ["superseded", "offered"]
    page = _text(client.get(f"/console/referrals/{referral.id}/plans"))
    assert "Version 1" in page and "Version 2" in page
    assert "total: €7,100.00 → €6,600.00" in page


def test_a_form_sent_twice_offers_one_version_and_says_why_in_words(
    client, session, factory, agency, coordinator
):
    referral = reviewed_as_candidate(factory, agency, coordinator)
    _signed_in(client, session, "coordinator")
    path = f"/console/referrals/{referral.id}/plans/new"
    assert _post(client, path, _plan_form()).status_code == 303
    again = _post(client, path, _plan_form())
    assert again.status_code == 409
    assert "Nothing offered: version 1 was offered after this form was opened" in _text(again)
    assert 'name="based_on" value="1"' in _text(again)  # sent once more, it would offer v2
    versions = session.scalars(
        select(TreatmentPlan).where(TreatmentPlan.referral_id == referral.id)
    ).all()
    assert len(versions) == 1


def test_reading_the_versions_is_audited(client, session, factory, agency, coordinator):
    referral = _offered(factory, agency, coordinator)
    _signed_in(client, session, "manager")
    assert client.get(f"/console/referrals/{referral.id}/plans").status_code == 200
    reads = session.scalars(
        select(AuditEvent).where(
            AuditEvent.action == "plan.read", AuditEvent.referral_id == referral.id
        )
    ).all()
    assert len(reads) == 1


@pytest.mark.parametrize("path", ["plans", "plans/new"])
def test_a_specialist_never_sees_the_plan_pages(
    client, session, factory, agency, coordinator, path
):
    referral = _offered(factory, agency, coordinator)
    _signed_in(client, session, "specialist")
    page = client.get(f"/console/referrals/{referral.id}/{path}")
    assert page.status_code == 403
    assert "€" not in _text(page)


def test_the_referral_page_offers_the_actions_the_stage_and_role_allow(
    client, session, factory, agency, coordinator
):
    referral = in_review(factory, agency, coordinator)
    _signed_in(client, session, "specialist")
    text = _text(client.get(f"/console/referrals/{referral.id}"))
    assert "Record the review" in text and "Build and offer a plan" not in text
    client.post("/console/sign-out", data={"csrf_token": csrf_token(client, "/console/")})
    _signed_in(client, session, "coordinator")
    text = _text(client.get(f"/console/referrals/{referral.id}"))
    assert "Build and offer a plan" in text and "Record the review" not in text


# --- travel --------------------------------------------------------------------------


def _flight_fields(direction: str, flight: dict[str, str]) -> dict[str, str]:
    return {f"flights-{direction}-{name}": value[:16] if name.endswith("_at") else value
            for name, value in flight.items()}  # fmt: skip


def _trip_form(**overrides) -> dict[str, str]:
    form = {
        "admission_at": "2030-04-02T08:00",
        "time_zone": "Europe/Istanbul",
        "hospital_nights": "",
        **_flight_fields("inbound", INBOUND),
        **_flight_fields("outbound", OUTBOUND),
        "hotel-name": "Hotel Bosphorus",
        "hotel-address": "Sisli, Istanbul",
        "transfers": "Airport pick-up",
        "companion-name": "Anna Weber",
        "companion-passport_country": "DE",
        "visa_letter_needed": "yes",
    }
    form.update(overrides)
    return form


def test_a_coordinator_books_travel_read_in_local_zones_and_the_referral_moves(
    client, session, factory, agency, coordinator
):
    referral = _accepted(factory, agency, coordinator)
    _signed_in(client, session, "coordinator")
    response = _post(client, f"/console/referrals/{referral.id}/trip", _trip_form())
    assert response.status_code == 303
    trip = session.scalar(select(Trip).where(Trip.referral_id == referral.id))
    assert trip.admission_at.isoformat() == "2030-04-02T05:00:00+00:00"  # 08:00 Istanbul
    inbound = next(f for f in trip.flights if f.direction == "inbound")
    assert inbound.departs_at.isoformat() == "2030-03-31T08:00:00+00:00"  # 10:00 CEST
    assert (trip.companion_name, trip.visa_letter_needed) == ("Anna Weber", True)
    session.refresh(referral)
    assert referral.stage == "travel_booked"


def test_an_arrival_too_late_is_refused_in_words_next_to_the_arrival(
    client, session, factory, agency, coordinator
):
    referral = _accepted(factory, agency, coordinator)
    _signed_in(client, session, "coordinator")
    form = _trip_form(
        **{
            "flights-inbound-departs_at": "2030-04-02T01:00",
            "flights-inbound-arrives_at": "2030-04-02T05:10",
        }
    )
    response = _post(client, f"/console/referrals/{referral.id}/trip", form)
    assert response.status_code == 422
    text = _text(response)
    assert 'id="flights-inbound-arrives_at-error">arrival too late' in text
    assert 'value="2030-04-02T05:10"' in text
    assert session.scalar(select(Trip).where(Trip.referral_id == referral.id)) is None


def test_a_bad_airport_code_is_refused_by_the_schema(client, session, factory, agency, coordinator):
    referral = _accepted(factory, agency, coordinator)
    _signed_in(client, session, "coordinator")
    form = _trip_form(**{"flights-inbound-departure_airport": "Frankfurt"})
    response = _post(client, f"/console/referrals/{referral.id}/trip", form)
    assert response.status_code == 422
    assert 'id="flights-inbound-departure_airport-error">a 3-letter IATA airport code<' in _text(
        response
    )


def test_the_trip_page_shows_a_booked_trip_in_its_local_times(
    client, session, factory, agency, coordinator
):
    referral = _accepted(factory, agency, coordinator)
    _signed_in(client, session, "coordinator")
    _post(client, f"/console/referrals/{referral.id}/trip", _trip_form())
    page = _text(client.get(f"/console/referrals/{referral.id}/trip"))
    assert "Change travel" in page
    assert (
        'name="flights-inbound-departs_at" type="datetime-local" value="2030-03-31T10:00"' in page
    )


def test_a_specialist_cannot_book_travel(client, session, factory, agency, coordinator):
    referral = _accepted(factory, agency, coordinator)
    _signed_in(client, session, "specialist")
    assert client.get(f"/console/referrals/{referral.id}/trip").status_code == 403


# --- the stay ------------------------------------------------------------------------


def _wall(moment, zone: str) -> str:
    return moment.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%dT%H:%M")


def test_admission_typed_in_the_viewers_zone_moves_the_referral_to_in_treatment(
    client, session, factory, agency, coordinator
):
    referral = _booked(factory, agency, coordinator)
    user = _signed_in(client, session, "coordinator")
    at = (utcnow() - timedelta(days=3)).replace(second=0, microsecond=0)
    response = _post(
        client,
        f"/console/referrals/{referral.id}/stay/admission",
        {"at": _wall(at, user.time_zone)},
    )
    assert response.status_code == 303
    trip = session.scalar(select(Trip).where(Trip.referral_id == referral.id))
    assert trip.admitted_at == at
    session.refresh(referral)
    assert referral.stage == "in_treatment"


def test_a_blank_time_records_the_admission_now(client, session, factory, agency, coordinator):
    referral = _booked(factory, agency, coordinator)
    _signed_in(client, session, "coordinator")
    _post(client, f"/console/referrals/{referral.id}/stay/admission", {"at": ""})
    trip = session.scalar(select(Trip).where(Trip.referral_id == referral.id))
    assert utcnow() - trip.admitted_at < timedelta(minutes=1)


def test_an_admission_in_the_future_is_refused_in_words_keeping_the_time(
    client, session, factory, agency, coordinator
):
    referral = _booked(factory, agency, coordinator)
    user = _signed_in(client, session, "coordinator")
    typed = _wall(utcnow() + timedelta(days=1), user.time_zone)
    response = _post(client, f"/console/referrals/{referral.id}/stay/admission", {"at": typed})
    assert response.status_code == 422
    text = _text(response)
    assert 'id="at-error">is in the future: record what has happened<' in text
    assert f'value="{typed}"' in text


def test_an_admission_before_the_flight_lands_names_the_landing_in_the_viewers_time(
    client, session, factory, agency, coordinator
):
    referral = _booked(factory, agency, coordinator)
    user = _signed_in(client, session, "coordinator")
    typed = _wall(utcnow() - timedelta(days=5), user.time_zone)
    response = _post(client, f"/console/referrals/{referral.id}/stay/admission", {"at": typed})
    assert response.status_code == 422
    text = _text(response)
    assert "may not be before the inbound flight lands (" in text
    assert "+03)" in text and "+00:00" not in text  # Europe/Istanbul, not the stored UTC
    assert "Not accepted: 1 field to correct, each marked below." in text


def test_the_referral_page_offers_the_admission_form_once_travel_is_booked(
    client, session, factory, agency, coordinator
):
    referral = _booked(factory, agency, coordinator)
    _signed_in(client, session, "coordinator")
    text = _text(client.get(f"/console/referrals/{referral.id}"))
    assert "Record admission" in text and "Change travel" in text


@pytest.mark.parametrize("role", ["manager", "specialist"])
def test_only_coordinators_record_the_stay_as_in_the_api(
    client, session, factory, agency, coordinator, role
):
    referral = _booked(factory, agency, coordinator)
    _signed_in(client, session, role)
    assert client.get(f"/console/referrals/{referral.id}/stay/admission").status_code == 403


# --- amounts -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "currency", "minor"),
    [("6500", "EUR", 650000), ("6500.5", "EUR", 650050), ("1 250.75", "USD", 125075),
     ("1000", "JPY", 1000), ("12.345", "KWD", 12345)],
)  # fmt: skip
def test_a_typed_amount_becomes_minor_units_by_the_currencys_digits(typed, currency, minor):
    assert forms.to_minor(typed, currency) == minor


@pytest.mark.parametrize(
    ("typed", "currency", "reason"),
    [("12.345", "EUR", "has more decimals than EUR has: at most 2 decimal(s)"),
     ("6,500", "EUR", "an amount such as 6500 or 6500.50"),
     ("-5", "EUR", "an amount such as 6500 or 6500.50")],
)  # fmt: skip
def test_an_amount_that_is_not_exact_in_the_currency_is_refused_in_words(typed, currency, reason):
    with pytest.raises(ValueError, match=re.escape(reason)):
        forms.to_minor(typed, currency)
