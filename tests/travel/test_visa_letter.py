"""The visa invitation letter: a real PDF with the patient's details, access-checked, audited."""

from __future__ import annotations

import contextlib
import zlib
from datetime import date

import pytest
from sqlalchemy import select

from crm.core.audit import AuditEvent
from crm.travel.letter import VisaLetter, render_visa_letter, unicode_font
from tests.helpers import API, assert_problem
from tests.travel.support import accepted_referral, trip_payload

pytestmark = pytest.mark.usefixtures("without_clinical_guards", "no_quiet_hours")

LETTER = VisaLetter(
    reference="R-000042",
    issued_on=date(2030, 3, 1),
    patient_name="Jonas Weber",
    patient_date_of_birth=date(1980, 4, 2),
    passport_country="Germany",
    arrival_date=date(2030, 3, 31),
    departure_date=date(2030, 4, 7),
    admission_date=date(2030, 4, 2),
    hospital_name="Istanbul Spine Centre",
    hospital_phone="+90 212 000 00 00",
    procedure_name="Microdiscectomy",
    companion_name="Anna Weber",
    companion_passport_country="Germany",
)


def _text(pdf: bytes) -> bytes:
    """The page content of an uncompressed core-font PDF (enough to search for words)."""
    return pdf.replace(b"\\(", b"(").replace(b"\\)", b")")


def test_the_letter_names_the_patient_the_stay_the_hospital_and_the_companion():
    pdf = render_visa_letter(LETTER, font=None, compress=False)
    assert pdf.startswith(b"%PDF-")
    text = _text(pdf)
    for expected in (
        b"Jonas Weber",
        b"Germany",
        b"31 March 2030",
        b"07 April 2030",
        b"Istanbul Spine Centre",
        b"Microdiscectomy",
        b"Anna Weber",
        b"R-000042",
    ):
        assert expected in text, expected


def test_without_a_companion_the_letter_does_not_mention_one():
    alone = VisaLetter(**{**LETTER.__dict__, "companion_name": None})
    assert b"accompanied" not in render_visa_letter(alone, font=None, compress=False)


def test_a_name_outside_latin_1_still_renders_with_the_core_font():
    cyrillic = VisaLetter(**{**LETTER.__dict__, "patient_name": "Иван Петров"})
    assert render_visa_letter(cyrillic, font=None).startswith(b"%PDF-")


@pytest.mark.skipif(unicode_font() is None, reason="no DejaVu Sans on this machine")
def test_a_unicode_font_embeds_names_in_any_script():
    cyrillic = VisaLetter(**{**LETTER.__dict__, "patient_name": "Иван Петров"})
    pdf = render_visa_letter(cyrillic, font=unicode_font())
    assert pdf.startswith(b"%PDF-")
    assert b"/FontFile2" in pdf  # the font travels with the letter


@pytest.fixture
def booked(client, factory, agency, coordinator):
    referral = accepted_referral(factory, agency, coordinator)
    response = client.put(
        f"{API}/referrals/{referral.id}/trip", json=trip_payload(), headers=coordinator.headers()
    )
    assert response.status_code == 200, response.json
    return referral


def _letter(client, caller, referral_id):
    return client.get(
        f"{API}/referrals/{referral_id}/trip/visa-letter.pdf", headers=caller.headers()
    )


def _page_streams(pdf: bytes) -> bytes:
    """Every stream of the file inflated, to look into a compressed PDF."""
    out, start = b"", 0
    while (begin := pdf.find(b"stream\n", start)) != -1:
        end = pdf.find(b"endstream", begin)
        # a decompressor stops at the deflate stream's own end, so the EOL before
        # "endstream" is left over rather than stripped (a stripped "\n" or "\r" could be
        # the compressed data's own last byte: the test failed about once in a hundred)
        with contextlib.suppress(zlib.error):
            out += zlib.decompressobj().decompress(pdf[begin + 7 : end])
        start = end
    return out


def test_the_agency_downloads_the_letter_as_a_pdf(client, booked, agency, session):
    response = _letter(client, agency, booked.id)
    assert response.status_code == 200
    assert response.mimetype == "application/pdf"
    assert response.data.startswith(b"%PDF-")
    assert "attachment" in response.headers["Content-Disposition"]
    assert _page_streams(response.data)  # real, inflatable content
    actions = session.scalars(
        select(AuditEvent.action).where(AuditEvent.referral_id == booked.id)
    ).all()
    assert "trip.visa_letter" in actions


def test_staff_download_the_letter(client, booked, factory):
    assert _letter(client, factory.staff("specialist"), booked.id).status_code == 200


def test_another_agency_gets_404(client, booked, factory):
    assert_problem(_letter(client, factory.agency(), booked.id), 404, "not-found")


def test_no_letter_unless_the_trip_asks_for_one(client, factory, agency, coordinator):
    referral = accepted_referral(factory, agency, coordinator)
    client.put(
        f"{API}/referrals/{referral.id}/trip",
        json=trip_payload(visa_letter_needed=False),
        headers=coordinator.headers(),
    )
    assert_problem(_letter(client, coordinator, referral.id), 409, "conflict")


def test_no_trip_no_letter(client, factory, agency, coordinator):
    referral = accepted_referral(factory, agency, coordinator)
    assert_problem(_letter(client, coordinator, referral.id), 404, "not-found")
