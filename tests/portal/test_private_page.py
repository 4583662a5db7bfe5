# ruff: noqa: RUF001 - Turkish words use the dotless i
"""The patient's private page speaks the patient's language, says who is speaking, shows
where the case stands, keeps what the patient typed after an error, and shows the real
stay once it happened."""

from __future__ import annotations

import re
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from babel.dates import format_date

from crm.auth.rate_limits import limiter_of
from crm.core.db import utcnow
from crm.followup.queries import check_ins_of
from crm.patients import links
from crm.plans.operations import accept_plan, offer_plan
from crm.plans.queries import current_plan
from crm.plans.schemas import PlanArgs
from crm.referrals.operations import move_to_stage
from crm.reviews.operations import record_review
from crm.travel import operations as travel
from crm.travel.schemas import TripArgs
from tests.plans.support import CANDIDATE, CONSENTS, patient_of, plan_body, upload_sample_mri
from tests.portal.shown import shown_fields
from tests.travel.support import trip_around

# Words that must never stay English on a page in another language.
ENGLISH = (
    "Your treatment plan",
    "Where your case stands",
    "What happens next",
    "Read the plan below and accept it when you are ready.",
    "Your treatment plan is ready for you to read and accept.",
    "Enquiry received",
    "Specialist review",
    "Accept this plan",
    "Total",
    "Deposit",
    "Valid until",
    "Questions? Call",
    "Call us",
    "Emergency, day and night",
    "Accredited by",
    "I have read the treatment information",
    "processing of my health data",
    "Hello ",
)
# What each language says instead (one sentence each, from the catalogue).
TRANSLATED = {
    "ar": "خطة علاجك",
    "de": "Ihr Behandlungsplan",
    "ru": "Ваш план лечения",
    "tr": "Tedavi planınız",
}


def _url(referral, tail: str = "") -> str:
    return f"/p/{links.token_for(links.link_for(referral.id))}{tail}"


def _offered(factory, language: str = "de", **plan):
    agency, coordinator = factory.agency(), factory.staff("coordinator")
    referral = factory.referral(agency, patient={"language": language})
    move_to_stage(referral, "awaiting_mri", coordinator.actor)
    upload_sample_mri(referral, agency.actor)
    record_review(referral, dict(CANDIDATE), factory.staff("specialist").actor)
    offer_plan(referral, PlanArgs().load(plan_body(**plan)), coordinator.actor)
    factory.session.commit()
    return referral


def _after_surgery(factory, session, language: str = "de", late=timedelta(0)):
    """Discharged an hour ago; admitted `late` after the planned admission. The first
    check-in is due."""
    referral = _offered(factory, language)
    accept_plan(current_plan(referral.id), dict(CONSENTS), patient_of(referral))
    coordinator = factory.staff("coordinator")
    discharged_at = utcnow() - timedelta(hours=1)
    planned = discharged_at - timedelta(days=2) - late
    travel.book_trip(referral, TripArgs().load(trip_around(planned)), coordinator.actor)
    travel.record_admission(referral, planned + late, coordinator.actor)
    travel.record_discharge(referral, discharged_at, coordinator.actor)
    day_1 = check_ins_of(referral.id)[0]
    day_1.due_at = utcnow()
    session.commit()
    return referral


def _alert(body: str) -> str:
    """The text of the page's alert box (the error or the call-us-now line)."""
    return re.sub(r"<[^>]+>", "", body.split('role="alert"', 1)[1].split("</div>", 1)[0])


@pytest.mark.parametrize("language", ["ar", "de", "ru", "tr"])
def test_every_language_renders_the_plan_with_no_english_left(client, factory, language):
    body = client.get(_url(_offered(factory, language))).get_data(as_text=True)
    assert TRANSLATED[language] in body
    leftovers = [english for english in ENGLISH if english in body]
    assert not leftovers, f"{language} page still says {leftovers}"


# ... and on the page after surgery: the check-in, the progress line, the stay.
ENGLISH_AFTER_SURGERY = (
    "How are you doing?",
    "Back pain now",
    "Leg pain now",
    "Numbness in the leg",
    "The wound",
    "healing well",
    "leaking fluid",
    "Anything else you want to tell us",
    "Your operation is done.",
    "Answer the short check-ins when we ask.",
    "Recovery",
    "Follow-up at home",
    "(completed)",
    "Your travel",
    "Departs",
    "Arrives",
    "Berlin time",
    "Hospital and hotel times",
    "Admitted to hospital",
    "Discharged from hospital",
    "Download the invitation letter",
)


@pytest.mark.parametrize("language", ["ar", "de", "ru", "tr"])
def test_every_language_renders_the_page_after_surgery_with_no_english_left(
    client, session, factory, language
):
    body = client.get(_url(_after_surgery(factory, session, language))).get_data(as_text=True)
    leftovers = [english for english in ENGLISH_AFTER_SURGERY if english in body]
    assert not leftovers, f"{language} page still says {leftovers}"


@pytest.mark.parametrize("language", ["ar", "de", "ru", "tr"])
def test_the_next_step_is_said_in_every_language(client, factory, language):
    referral = factory.referral(factory.agency(), patient={"language": language})
    body = client.get(_url(referral)).get_data(as_text=True)
    assert "Please send us your MRI images" not in body
    assert "We have received your enquiry." not in body


def test_a_missing_consent_is_named_by_its_label_in_the_patients_language(client, factory):
    referral = _offered(factory, "de")
    plan = current_plan(referral.id)
    data = {"plan_id": plan.id, "ack_info": "yes", **shown_fields(client, _url(referral))}
    page = client.post(_url(referral, "/accept"), data=data)
    assert page.status_code == 422
    alert = _alert(page.get_data(as_text=True))
    assert "Bitte prüfen Sie das Formular:" in alert
    assert "Verarbeitung meiner Gesundheitsdaten" in alert
    assert "Behandlungsinformationen" not in alert  # that one was ticked
    for raw in ("data_processing", "must be given", "Please"):
        assert raw not in page.get_data(as_text=True)


def test_the_ticked_consent_stays_ticked_after_an_error(client, factory):
    referral = _offered(factory, "de")
    plan = current_plan(referral.id)
    data = {"plan_id": plan.id, "ack_info": "yes", **shown_fields(client, _url(referral))}
    body = client.post(_url(referral, "/accept"), data=data).get_data(as_text=True)
    assert re.search(r'name="ack_info" value="yes" required checked', body)
    assert re.search(r'name="ack_data" value="yes" required aria-invalid="true"', body)


def test_a_plan_no_longer_open_is_explained_without_the_operations_english(client, factory):
    referral = _offered(factory, "de")
    plan = current_plan(referral.id)
    data = {"plan_id": plan.id, "ack_info": "yes", "ack_data": "yes"}
    data.update(shown_fields(client, _url(referral)))
    assert client.post(_url(referral, "/accept"), data=data).status_code == 303
    again = client.post(_url(referral, "/accept"), data=data)
    assert again.status_code == 409
    body = again.get_data(as_text=True)
    assert "Dieser Plan kann hier nicht mehr angenommen werden." in _alert(body)
    assert "not open for acceptance" not in body


def test_the_acceptance_shows_the_real_date_in_the_patients_language(client, session, factory):
    referral = _offered(factory, "de")
    plan = current_plan(referral.id)
    data = {"plan_id": plan.id, "ack_info": "yes", "ack_data": "yes"}
    data.update(shown_fields(client, _url(referral)))
    done = client.post(_url(referral, "/accept"), data=data).headers["Location"]
    body = client.get(done).get_data(as_text=True)
    session.refresh(plan)
    zone = ZoneInfo(referral.patient.time_zone)
    day = format_date(plan.accepted_at.astimezone(zone).date(), "long", locale="de")
    assert f"Sie haben diesen Plan am <bdi>{day}</bdi> angenommen." in body
    assert not re.search(r"\b(am|on) \.", body)  # a sentence without its date


def test_a_check_in_answer_out_of_range_is_named_by_its_label_and_the_entries_are_kept(
    client, session, factory
):
    referral = _after_surgery(factory, session, "de")
    answer = {
        "back_pain": "",
        "leg_pain": "2",
        "wound": "discharge",
        "weakness": "yes",
        "free_text": "Seit gestern <besser>",
    }
    page = client.post(_url(referral, "/check-in"), data=answer)
    assert page.status_code == 422
    body = page.get_data(as_text=True)
    alert = _alert(body)
    assert "Rückenschmerzen jetzt (0 = keine, 10 = stärkste): Bitte geben Sie eine Zahl" in alert
    assert "back_pain" not in alert and "Field may not be null" not in body
    assert re.search(r'name="leg_pain"[^>]*value="2"', body)
    assert 'name="weakness" value="yes" checked' in body
    assert '<option value="discharge" selected>nässt</option>' in body
    assert "Seit gestern &lt;besser&gt;</textarea>" in body


def test_a_check_in_that_is_due_comes_first_on_the_page(client, session, factory):
    body = client.get(_url(_after_surgery(factory, session, "en"))).get_data(as_text=True)
    main = body.split("<main>", 1)[1]
    assert main.index("How are you doing?") < main.index("Where your case stands")
    assert main.index("How are you doing?") < main.index("Your treatment plan")


def test_after_discharge_the_page_shows_the_real_admission_and_discharge(client, session, factory):
    referral = _after_surgery(factory, session, "en", late=timedelta(hours=3))
    body = client.get(_url(referral)).get_data(as_text=True)
    assert "Admitted to hospital" in body and "Discharged from hospital" in body
    assert "(planned)" not in body
    trip = travel_of(referral)
    local = trip.admitted_at.astimezone(ZoneInfo(trip.local_time_zone))
    assert local.strftime("%-I:%M") in body  # the real time, three hours after the plan
    planned = trip.admission_at.astimezone(ZoneInfo(trip.local_time_zone))
    assert planned.strftime("%b %-d, %Y, %-I:%M") not in body


def test_before_the_stay_the_page_says_the_times_are_planned(client, factory):
    referral = _offered(factory, "en")
    accept_plan(current_plan(referral.id), dict(CONSENTS), patient_of(referral))
    coordinator = factory.staff("coordinator")
    admission = utcnow() + timedelta(days=20)
    travel.book_trip(referral, TripArgs().load(trip_around(admission)), coordinator.actor)
    body = client.get(_url(referral)).get_data(as_text=True)
    assert "Hospital admission (planned)" in body and "Discharge (planned)" in body
    assert "Admitted to hospital" not in body


def test_flight_times_carry_their_zone(client, session, factory):
    body = client.get(_url(_after_surgery(factory, session, "de"))).get_data(as_text=True)
    assert re.search(r"Abflug: <bdi>[^<]*\d\d:\d\d \(Ortszeit Berlin\)</bdi>", body)
    assert re.search(r"Ankunft: <bdi>[^<]*\d\d:\d\d \(Ortszeit Istanbul\)</bdi>", body)


def test_the_progress_line_marks_the_current_step_for_assistive_technology(client, factory):
    body = client.get(_url(_offered(factory, "en"))).get_data(as_text=True)
    line = body.split('<ol class="progress">', 1)[1].split("</ol>", 1)[0]
    steps = re.findall(r"<li class=\"(\w+)\"( aria-current=\"step\")?>", line)
    assert [state for state, _ in steps] == ["done"] * 3 + ["current"] + ["upcoming"] * 5
    assert [bool(current) for _, current in steps].index(True) == 3
    current = line.split('aria-current="step"', 1)[1].split("</li>", 1)[0]
    assert "Treatment plan" in current


def test_a_paused_enquiry_is_said_kindly_and_shows_where_it_paused(client, factory):
    referral = factory.referral(factory.agency(), patient={"language": "en"})
    coordinator = factory.staff("coordinator")
    move_to_stage(referral, "awaiting_mri", coordinator.actor)
    move_to_stage(referral, "on_hold", coordinator.actor)
    body = client.get(_url(referral)).get_data(as_text=True)
    assert "Your enquiry is paused for now. Nothing is lost" in body
    paused = body.split('class="paused" aria-current="step"', 1)[1].split("</li>", 1)[0]
    assert "MRI images" in paused and "(paused)" in paused


def test_a_closed_enquiry_is_said_kindly_without_a_progress_line(client, factory):
    referral = factory.referral(factory.agency(), patient={"language": "en"})
    move_to_stage(referral, "lost", factory.staff("coordinator").actor, reason="price")
    body = client.get(_url(referral)).get_data(as_text=True)
    assert "We are sorry we could not help this time" in body
    assert 'class="progress"' not in body
    assert "price" not in body


def test_every_page_says_who_is_speaking_with_phones_to_tap(app, client, factory):
    settings = app.config["CRM"]
    body = client.get(_url(_offered(factory, "en"))).get_data(as_text=True)
    _assert_identity(settings, body)


def test_the_invalid_link_page_says_who_is_speaking_too(app, client):
    page = client.get("/p/nonsense")
    assert page.status_code == 404
    _assert_identity(app.config["CRM"], page.get_data(as_text=True))


def _assert_identity(settings, body: str) -> None:
    banner = body.split('<header class="hospital">', 1)[1].split("</header>", 1)[0]
    assert settings["HOSPITAL_NAME"] in banner
    assert settings["HOSPITAL_ADDRESS"] in banner
    assert settings["HOSPITAL_ACCREDITATION"] in banner
    for phone in (settings["HOSPITAL_PHONE"], settings["HOSPITAL_EMERGENCY_PHONE"]):
        assert f'href="tel:{phone.replace(" ", "")}"' in banner
        assert f'<span dir="ltr">{phone}</span>' in banner


@pytest.mark.parametrize(
    ("accept_language", "lang", "sentence"),
    [
        ("ru-RU,ru;q=0.9,en;q=0.5", "ru", "Ссылка недействительна или устарела."),
        ("ar", "ar", "هذا الرابط غير صالح أو منتهي الصلاحية."),
        ("tr-TR", "tr", "Bu bağlantı geçersiz veya süresi dolmuş."),
        ("ja-JP,ja;q=0.9", "en", "This link is not valid or has expired."),
    ],
)
def test_the_invalid_link_page_speaks_the_browsers_language(
    client, accept_language, lang, sentence
):
    page = client.get("/p/nonsense", headers={"Accept-Language": accept_language})
    assert page.status_code == 404 and page.mimetype == "text/html"
    body = page.get_data(as_text=True)
    assert f'<html lang="{lang}"' in body
    assert sentence in body


def test_the_invalid_link_page_says_nothing_about_any_case(client, factory):
    referral = _offered(factory, "de")
    token = links.token_for(links.link_for(referral.id))
    body = client.get(f"/p/{token}x").get_data(as_text=True)
    assert referral.patient.given_name not in body
    assert "Behandlungsplan" not in body and "7.100" not in body


def test_arabic_amounts_name_the_currency_and_keep_their_digits_isolated(client, factory):
    body = client.get(_url(_offered(factory, "ar", currency="USD"))).get_data(as_text=True)
    assert "<bdi>7,100.00 دولار أمريكي</bdi>" in body
    assert "US$" not in body and "$US" not in body and "\u200f" not in body


def test_arabic_phone_numbers_read_left_to_right(app, client, factory):
    body = client.get(_url(_offered(factory, "ar"))).get_data(as_text=True)
    phone = app.config["CRM"]["HOSPITAL_PHONE"]
    footer = body.split('<footer class="contact">', 1)[1]
    assert f'dir="ltr">{phone}</a>.' in footer  # the full stop stays in the Arabic sentence
    assert 'dir="rtl"' in body and 'lang="ar"' in body


def travel_of(referral):
    from crm.travel.queries import trip_of

    return trip_of(referral)


def test_too_many_requests_are_told_in_the_browsers_language_on_the_same_page(app, client):
    limiter_of(app).reset()
    before = app.config["CRM"]["PORTAL_RATE_PER_MINUTE"]
    app.config["CRM"]["PORTAL_RATE_PER_MINUTE"] = 1
    try:
        client.get("/p/whatever")
        page = client.get("/p/whatever", headers={"Accept-Language": "de"})
    finally:
        app.config["CRM"]["PORTAL_RATE_PER_MINUTE"] = before
        limiter_of(app).reset()
    assert page.status_code == 429 and page.mimetype == "text/html"
    body = page.get_data(as_text=True)
    assert "Zu viele Anfragen." in body
    assert app.config["CRM"]["HOSPITAL_PHONE"] in body
