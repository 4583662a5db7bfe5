"""The agency panel's referral side in a real browser: an agency's user signs in, lists
the agency's referrals, opens one, uploads a document refused in words, writes to the
hospital, and sends a patient through the form (refused beside a field first)."""

from __future__ import annotations

import itertools

import pytest

from crm.agency_messages.operations import post_message
from tests.browser.harness import expect, scrolls_sideways
from tests.panel.support import agency_user

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery staple"
_numbers = itertools.count(1)


def _agency_with_referrals(live_server) -> tuple[str, int]:
    """An agency's user (email) and one of three referrals of the agency (its id), with a
    coordinator's message to the agency on it."""
    n = next(_numbers)
    with live_server.data() as factory:
        agency = factory.agency(f"Panel MedTravel {n}")
        user = agency_user(factory.session, agency.actor.agency_id)
        coordinator = factory.staff()
        people = [("Jonas", "Weber"), ("Anna", "Schmidt"), ("Leyla", "Öztürk")]
        referrals = [
            factory.referral(
                agency,
                agency_reference=f"BMT-{n}-{i}",
                patient={"given_name": given, "family_name": family},
            )
            for i, (given, family) in enumerate(people)
        ]
        post_message(
            referrals[0], "Could you send the MRI on a disc or as a ZIP?", coordinator.actor
        )
        return user.email, referrals[0].id


def _sign_in(page, live_server, email: str) -> None:
    page.goto(live_server.url("/agency/referrals"))
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(live_server.url("/agency/referrals"))


def test_an_agency_lists_its_referrals_opens_one_uploads_and_writes(
    live_server, browser_page, screenshot, tmp_path
):
    page = browser_page
    email, referral_id = _agency_with_referrals(live_server)
    _sign_in(page, live_server, email)
    expect(page.get_by_role("heading", name="Your referrals")).to_be_visible()
    expect(page.locator("table.results tbody tr")).to_have_count(3)
    expect(page.locator("table.results")).to_contain_text("1 new message")
    screenshot("list", sizes=("laptop", "phone"))
    assert not scrolls_sideways(page)

    page.get_by_label("Search").fill("ozturk")
    page.get_by_role("button", name="Show").click()
    expect(page.locator("table.results tbody tr")).to_have_count(1)
    expect(page.locator("table.results")).to_contain_text("Leyla Öztürk")

    page.goto(live_server.url(f"/agency/referrals/{referral_id}"))
    expect(page.get_by_role("heading", name="Jonas Weber")).to_be_visible()
    expect(page.locator("body")).to_contain_text("The hospital is waiting for: The MRI")
    expect(page.locator("#messages")).to_contain_text("Could you send the MRI")
    pdf = tmp_path / "scan.pdf"
    pdf.write_bytes(b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n")
    page.get_by_label("Kind of document").select_option("mri_study")
    page.get_by_label("File").set_input_files(str(pdf))
    page.get_by_role("button", name="Upload").click()
    expect(page.locator("#upload-error")).to_contain_text(
        "An MRI study must be DICOM or a ZIP of DICOM images"
    )
    page.locator("#documents").scroll_into_view_if_needed()
    screenshot("upload-refused", sizes=("laptop",))
    page.get_by_label("Your message to the hospital").fill("The disc is in the post today.")
    page.get_by_role("button", name="Send message").click()
    expect(page.get_by_role("status")).to_contain_text("Message sent")
    expect(page.locator("#messages")).to_contain_text("The disc is in the post today.")
    screenshot("referral", sizes=("laptop", "phone"))


def test_an_agency_sends_a_patient_after_correcting_a_field(live_server, browser_page, screenshot):
    page = browser_page
    email, _ = _agency_with_referrals(live_server)
    _sign_in(page, live_server, email)
    page.get_by_role("link", name="Send a patient").first.click()
    expect(page.get_by_role("heading", name="Send a patient")).to_be_visible()
    page.get_by_label("Procedure (required)").select_option("microdiscectomy")
    page.get_by_label("Given name (required)").fill("Mehmet")
    page.get_by_label("Family name (required)").fill("Demir")
    page.get_by_label("Phone").fill("0151 2345 6789")
    page.get_by_label("Country (required)").fill("DE")
    page.get_by_label("Time zone (required)").fill("Europe/Berlin ")
    page.get_by_label("Pain now (0 to 10)").fill("12")
    page.get_by_role("button", name="Send the referral").click()
    expect(page.get_by_role("alert")).to_contain_text("The referral was not sent.")
    expect(page.locator("#intake-pain_score-error")).to_be_visible()
    expect(page.get_by_label("Given name (required)")).to_have_value("Mehmet")
    screenshot("form-with-an-error", sizes=("laptop", "phone"))
    page.get_by_label("Pain now (0 to 10)").fill("6")
    page.get_by_role("button", name="Send the referral").click()
    expect(page.get_by_role("heading", name="Mehmet Demir")).to_be_visible()
    expect(page.get_by_role("status")).to_contain_text("Sent: R-")
    screenshot("sent", sizes=("laptop",))


def test_a_coordinator_reads_the_agencys_message_and_answers_on_the_console(
    live_server, browser_page, screenshot
):
    from crm.auth import operations as auth

    page = browser_page
    n = next(_numbers)
    email = f"panel.coordinator{n}@hospital.example"
    with live_server.data() as factory:
        auth.create_staff_user(email, "Elif Browser", "coordinator", PASSWORD)
        agency = factory.agency(f"Gulf Care {n}")
        referral = factory.referral(agency, patient={"given_name": "Omar", "family_name": "Haddad"})
        post_message(referral, "The patient asks whether he may fly home on day 3.", agency.actor)
        referral_id = referral.id
    page.goto(live_server.url(f"/console/referrals/{referral_id}"))
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    box = page.locator("#agency-messages")
    expect(box).to_contain_text("The patient asks whether he may fly home on day 3.")
    expect(box).to_contain_text("1 new")
    page.get_by_label(f"Write to Gulf Care {n}").fill("The surgeon will answer after the review.")
    page.get_by_role("button", name="Send to the agency").click()
    expect(page.get_by_role("status")).to_contain_text("Message sent to the agency")
    expect(box).to_contain_text("The surgeon will answer after the review.")
    screenshot("console-thread", sizes=("laptop",))


def test_an_agency_uploads_an_mri_resumably_and_sees_it_received(
    live_server, browser_page, screenshot, tmp_path
):
    """The panel's script sends the file with the resumable protocol (hashed in the
    browser, sent in chunks, checked by the server), then shows the referral's page with
    the document on it."""
    from crm.documents.samples import write_sample_mri

    page = browser_page
    email, referral_id = _agency_with_referrals(live_server)
    _sign_in(page, live_server, email)
    page.goto(live_server.url(f"/agency/referrals/{referral_id}"))
    sent: list[str] = []
    page.on("request", lambda r: sent.append(r.method) if "/agency/uploads/" in r.url else None)
    page.get_by_label("Kind of document").select_option("mri_study")
    page.get_by_label("File").set_input_files(str(write_sample_mri(tmp_path / "lumbar.dcm")))
    page.get_by_role("button", name="Upload").click()
    expect(page.get_by_text("Received: lumbar.dcm (MRI study).")).to_be_visible()
    expect(page.locator("#documents")).to_contain_text("lumbar.dcm")
    assert "PATCH" in sent, sent
    screenshot("upload-received", sizes=("laptop",))
