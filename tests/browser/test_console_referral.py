"""The referral page in a real browser: a coordinator opens a case with history, answers
the patient's SMS reply in the conversation (which closes its task), adds a note and takes
the case."""

from __future__ import annotations

import itertools

import pytest

from crm.auth import operations as auth
from crm.auth.signin import staff_actor
from crm.plans.operations import offer_plan
from crm.referrals.operations import add_note
from crm.reviews.operations import record_review
from tests.browser.harness import expect
from tests.console.history import REPLY_TEXT, REVIEW, patient_replies, plan_args, upload_mri

pytestmark = pytest.mark.browser

PASSWORD = "correct horse battery staple"
TABLET = {"width": 768, "height": 1024}
_numbers = itertools.count(1)


def _case_with_a_reply(live_server, tmp_path) -> tuple[str, int, str]:
    """A coordinator (email), a referral in plan_offered with an MRI, a review, a plan and a
    note (its id), and the patient's name; then the patient's SMS reply arrives."""
    n = next(_numbers)
    email = f"referral.coordinator{n}@hospital.example"
    phone = f"+49151555{n:05d}"
    with live_server.data() as factory:
        user = auth.create_staff_user(email, "Elif Browser", "coordinator", PASSWORD)
        factory.session.commit()
        referral = factory.referral(
            factory.agency(f"Berlin MedTravel {n}"),
            patient={"given_name": "Jonas", "phone": phone, "time_zone": "Europe/Berlin"},
        )
        staff = staff_actor(user)
        upload_mri(referral, staff, tmp_path)
        record_review(referral, REVIEW, factory.staff("specialist").actor)
        offer_plan(referral, plan_args(), staff)
        add_note(referral, "Prefers to be called after 18:00 his time.", staff)
        referral_id, name = referral.id, referral.patient.full_name
    patient_replies(live_server.app, live_server.app.test_client(), phone, sid=f"SMbrowser{n}")
    return email, referral_id, name


def _sign_in(page, live_server, email: str) -> None:
    page.goto(live_server.url("/console/sign-in"))
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


def test_a_coordinator_answers_the_reply_adds_a_note_and_takes_the_case(
    live_server, browser_page, screenshot, tmp_path
):
    page = browser_page
    email, referral_id, name = _case_with_a_reply(live_server, tmp_path)
    _sign_in(page, live_server, email)
    page.goto(live_server.url(f"/console/referrals/{referral_id}"))
    expect(page.get_by_role("heading", name=name)).to_be_visible()
    timeline = page.locator(".timeline")
    expect(timeline).to_contain_text(REPLY_TEXT)
    expect(timeline).to_contain_text("Review: candidate")
    screenshot("with-a-reply", sizes=("laptop",))

    page.get_by_label("Your answer").fill("Yes, please bring the CD with you.")
    page.get_by_role("button", name="Send answer").click()
    expect(page.get_by_role("status")).to_contain_text("Answer sent")
    expect(page.locator("#conversation")).to_contain_text("Yes, please bring the CD with you.")
    expect(timeline.locator(".kind-task .status-done").first).to_be_visible()

    page.get_by_label("Internal note").fill("Answered his question about the CD.")
    page.get_by_role("button", name="Add note").click()
    expect(page.get_by_role("status")).to_contain_text("Note added.")
    expect(timeline).to_contain_text("Answered his question about the CD.")

    page.get_by_label("Coordinator who owns it").select_option(label="Me (Elif Browser)")
    page.get_by_role("button", name="Assign", exact=True).click()
    expect(page.get_by_role("status")).to_contain_text("Owner changed.")
    expect(page.locator(".facts")).to_contain_text("Elif Browser")

    screenshot("after", sizes=("laptop",))
    page.set_viewport_size(TABLET)
    screenshot("after--tablet")


def test_the_timeline_filter_shows_one_kind(live_server, browser_page, screenshot, tmp_path):
    page = browser_page
    email, referral_id, _ = _case_with_a_reply(live_server, tmp_path)
    _sign_in(page, live_server, email)
    page.goto(live_server.url(f"/console/referrals/{referral_id}"))
    page.get_by_label("Show events").select_option(label="Documents")
    page.get_by_role("button", name="Show").click()
    entries = page.locator(".timeline .entry")
    expect(entries).to_have_count(1)
    expect(entries.first).to_contain_text("Modality: MR")
    expect(entries.first.get_by_role("link", name="Download lumbar-mri.dcm")).to_be_visible()
    screenshot("documents", sizes=("laptop",))
    page.get_by_label("Show events").select_option(label="Everything, with the audit trail")
    page.get_by_role("button", name="Show").click()
    expect(page.locator(".timeline .kind-audit").first).to_contain_text("referral.read")
    screenshot("everything", sizes=("laptop",))
