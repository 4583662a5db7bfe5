"""The patient sends their MRI on the private page in a real browser, at phone width: the
progress bar climbs to 100%, the page says what was received and the case moves to
review; a wrong file is refused in their language; without JavaScript the plain form
posts and the page answers."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

import pydicom
import pytest
from sqlalchemy import select

from crm.documents.models import Document
from crm.documents.samples import write_sample_mri
from crm.extensions import db
from crm.referrals.models import Referral
from crm.referrals.operations import move_to_stage
from tests.browser.harness import SIZES, expect, scrolls_sideways
from tests.browser.patients import NAMES, token_of
from tests.documents.test_documents import PDF

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = pytest.mark.browser

WORDS = {  # what the page says, as the patient reads it
    "en": {
        "kind": "What is this document?",
        "mri": "MRI study",
        "file": "Choose the file",
        "send": "Send the document",
        "thanks": "Thank you. We have received this document:",
        "review": "Your MRI is now with our specialists for review.",
        "sent": "Your document has been sent.",
        "wrong": "An MRI study must be DICOM images",
    },
    "ar": {
        "kind": "ما نوع هذا المستند؟",
        "mri": "صور الرنين المغناطيسي",
        "file": "اختر الملف",
        "send": "أرسل المستند",
        "thanks": "شكرًا لك. لقد استلمنا هذا المستند:",
        "review": "صور الرنين المغناطيسي الخاصة بك الآن لدى أطبائنا المختصين لمراجعتها.",
        "sent": "تم إرسال مستندك.",
        "wrong": "يجب إرسال صور الرنين المغناطيسي بصيغة DICOM",
    },
}
LANGUAGES = [pytest.param("en", id="english"), pytest.param("ar", id="arabic")]


def _waiting_for_the_mri(live_server, language: str) -> tuple[int, str]:
    with live_server.data() as factory:
        patient = {"language": language, "given_name": NAMES[language]}
        referral = factory.referral(factory.agency(), patient=patient)
        factory.staff("specialist")
        move_to_stage(referral, "awaiting_mri", factory.staff("coordinator").actor)
        return referral.id, token_of(referral)


def _mri_of_about(tmp_path: Path, megabytes: int) -> Path:
    """A real DICOM MR image large enough for the upload to take a moment."""
    path = write_sample_mri(tmp_path / "lumbar-spine.dcm")
    dataset = pydicom.dcmread(path)
    side = int((megabytes * 2**20) ** 0.5)
    dataset.Rows = dataset.Columns = side
    dataset.PixelData = os.urandom(side * side)
    dataset.save_as(path, enforce_file_format=True)
    return path


def _slow_uploads(page: Page, bytes_per_second: int) -> None:
    """Chromium's own network throttling, so the progress bar can be seen moving."""
    session = page.context.new_cdp_session(page)
    session.send("Network.enable")
    session.send(
        "Network.emulateNetworkConditions",
        {
            "offline": False,
            "latency": 20,
            "downloadThroughput": -1,
            "uploadThroughput": bytes_per_second,
        },
    )


def _open_at_phone_width(page: Page, live_server, token: str) -> None:
    page.set_viewport_size(SIZES["phone"])
    response = page.goto(live_server.url(f"/p/{token}"))
    assert response is not None and response.status == 200


def _stage_and_documents(live_server, referral_id: int) -> tuple[str, list[tuple[str, str]]]:
    with live_server.data():
        stage = db.session.get(Referral, referral_id).stage
        documents = db.session.execute(
            select(Document.kind, Document.uploaded_by_type).where(
                Document.referral_id == referral_id
            )
        ).all()
        return stage, [tuple(row) for row in documents]


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_patient_sends_the_mri_and_watches_it_arrive_at_phone_width(
    live_server, browser_page, screenshot, tmp_path, language
):
    words = WORDS[language]
    referral_id, token = _waiting_for_the_mri(live_server, language)
    page = browser_page
    _open_at_phone_width(page, live_server, token)
    expect(page.get_by_label(words["kind"])).to_have_value("mri_study")
    page.get_by_label(words["file"]).set_input_files(_mri_of_about(tmp_path, 2))
    expect(page.locator("#upload-progress-box")).to_be_hidden()
    screenshot("before", sizes=("phone",))

    page.evaluate(
        """() => { window.seenProgress = [];
        new MutationObserver(() => window.seenProgress.push(
            document.getElementById('upload-progress')?.value))
          .observe(document.querySelector('main'), {subtree: true, childList: true,
                                                    characterData: true, attributes: true}); }"""
    )
    _slow_uploads(page, bytes_per_second=1_000_000)
    page.get_by_role("button", name=words["send"]).click()
    progress = page.locator("#upload-progress")
    expect(progress).to_be_visible()
    page.wait_for_function(
        "() => { const v = document.getElementById('upload-progress')?.value; "
        "return v > 5 && v < 95; }",
        timeout=10_000,
    )
    expect(page.get_by_role("button", name=words["send"])).to_be_disabled()
    screenshot("sending", sizes=("phone",))

    expect(page.get_by_text(words["thanks"])).to_be_visible(timeout=15_000)
    expect(page.get_by_text(words["review"])).to_be_visible()
    expect(page.locator("#upload-progress")).to_have_attribute("value", "100")
    expect(page.locator("#upload-progress-label")).to_have_text(words["sent"])
    expect(page.locator("#upload-percent")).to_have_text(re.compile("100|\u0661\u0660\u0660"))
    expect(page.locator(".received")).to_contain_text("lumbar-spine.dcm")
    expect(page.locator(".received")).to_contain_text(words["mri"])
    seen = [value for value in page.evaluate("window.seenProgress || []") if value]
    assert any(0 < value < 100 for value in seen), seen  # it climbed, not jumped
    assert not scrolls_sideways(page)
    screenshot("received", sizes=("phone", "laptop"))
    page.set_viewport_size({"width": 320, "height": 700})  # the narrowest phones
    assert not scrolls_sideways(page)
    assert _stage_and_documents(live_server, referral_id) == (
        "mri_review",
        [("mri_study", "patient")],
    )


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_pdf_sent_as_the_mri_is_refused_in_the_patients_language(
    live_server, browser_page, screenshot, tmp_path, language
):
    words = WORDS[language]
    referral_id, token = _waiting_for_the_mri(live_server, language)
    page = browser_page
    _open_at_phone_width(page, live_server, token)
    scan = tmp_path / "scan.pdf"
    scan.write_bytes(PDF)
    page.get_by_label(words["file"]).set_input_files(scan)
    page.get_by_role("button", name=words["send"]).click()
    expect(page.get_by_role("alert")).to_contain_text(words["wrong"])
    expect(page.get_by_label(words["kind"])).to_have_value("mri_study")
    assert not scrolls_sideways(page)
    screenshot("refused", sizes=("phone",))
    assert _stage_and_documents(live_server, referral_id) == ("awaiting_mri", [])


def test_a_file_over_the_limit_is_refused_before_it_is_sent(
    live_server, browser_page, tmp_path, monkeypatch
):
    monkeypatch.setitem(live_server.app.config["CRM"], "DOCUMENT_MAX_MB_OTHER", 1)
    referral_id, token = _waiting_for_the_mri(live_server, "en")
    page = browser_page
    _open_at_phone_width(page, live_server, token)
    big = tmp_path / "passport.pdf"
    big.write_bytes(PDF + b"\0" * 2**21)
    page.get_by_label("What is this document?").select_option(label="Passport")
    page.get_by_label("Choose the file").set_input_files(big)
    posts: list[str] = []
    page.on(
        "request", lambda request: posts.append(request.url) if request.method == "POST" else None
    )
    page.get_by_role("button", name="Send the document").click()
    expect(page.get_by_role("alert")).to_have_text(
        "This file is too large: this kind of document may be at most 1 MB."
    )
    assert posts == []  # refused in the browser: no 2 MB sent only to be refused
    assert _stage_and_documents(live_server, referral_id) == ("awaiting_mri", [])


def test_without_javascript_the_form_posts_and_the_page_answers(
    live_server, browser, tmp_path, screenshot
):
    referral_id, token = _waiting_for_the_mri(live_server, "en")
    context = browser.new_context(java_script_enabled=False, viewport=SIZES["phone"])
    try:
        page = context.new_page()
        page.goto(live_server.url(f"/p/{token}"))
        page.get_by_label("Choose the file").set_input_files(
            write_sample_mri(tmp_path / "study.dcm")
        )
        page.get_by_role("button", name="Send the document").click()
        expect(page).to_have_url(re.compile(r"\?received=\d+#documents$"))
        expect(page.get_by_text("Thank you. We have received this document:")).to_be_visible()
        expect(page.locator("#upload-progress-box")).to_be_hidden()
        screenshot("received-without-javascript", page=page)
    finally:
        context.close()
    assert _stage_and_documents(live_server, referral_id) == (
        "mri_review",
        [("mri_study", "patient")],
    )


def test_a_stored_document_is_reported_sent_even_when_the_page_after_it_is_refused(
    live_server, browser_page, tmp_path, monkeypatch
):
    from crm.auth.rate_limits import limiter_of

    referral_id, token = _waiting_for_the_mri(live_server, "en")
    page = browser_page
    _open_at_phone_width(page, live_server, token)
    page.get_by_label("Choose the file").set_input_files(write_sample_mri(tmp_path / "a.dcm"))
    # the upload is allowed (its own allowance), the page shown after it is over the
    # page's limit: one page request spends it first
    limiter_of(live_server.app).reset()
    monkeypatch.setitem(live_server.app.config["CRM"], "PORTAL_RATE_PER_MINUTE", 1)
    assert page.evaluate("fetch(location.href).then(r => r.status)") == 200
    page.get_by_role("button", name="Send the document").click()
    expect(page.get_by_role("status")).to_have_text("Your document has been sent.")
    expect(page.locator("#upload-progress")).to_have_attribute("value", "100")
    assert _stage_and_documents(live_server, referral_id) == (
        "mri_review",
        [("mri_study", "patient")],
    )


def test_an_upload_cut_off_by_the_network_resumes_where_it_stopped(
    live_server, browser_page, screenshot, tmp_path
):
    """The hotel Wi-Fi drops mid-upload (the third 1 MiB chunk's request fails, and every
    request after it until the network is back): the page says so in words, and then goes
    on from the server's offset, not from zero, to a document whose hash the server
    checked. (The socket itself cut mid-chunk under gunicorn: tests/faults.)"""
    mib = 2**20
    referral_id, token = _waiting_for_the_mri(live_server, "en")
    page = browser_page
    _open_at_phone_width(page, live_server, token)
    page.get_by_label("Choose the file").set_input_files(_mri_of_about(tmp_path, 5))
    page.evaluate(f"document.getElementById('upload-form').dataset.chunkBytes = '{mib}'")
    offsets: list[int] = []
    network = {"down": False}

    def wifi(route) -> None:
        request = route.request
        if request.method == "PATCH":
            offsets.append(int(request.headers["upload-offset"]))
            if offsets[-1] == 2 * mib and not network["down"] and offsets.count(2 * mib) == 1:
                network["down"] = True
        if network["down"]:
            route.abort("internetdisconnected")
        else:
            route.continue_()

    page.route("**/uploads/**", wifi)
    page.get_by_role("button", name="Send the document").click()
    expect(page.locator("#upload-words")).to_have_text(
        "The connection was lost. Sending will go on from where it stopped as soon as it is back."
    )
    expect(page.locator("#upload-progress")).to_have_attribute("value", re.compile("^[1-9]"))
    screenshot("connection-lost", sizes=("phone",))
    network["down"] = False
    page.evaluate("window.dispatchEvent(new Event('online'))")
    expect(page.get_by_text("Thank you. We have received this document:")).to_be_visible(
        timeout=30_000
    )
    expect(page.locator("#upload-progress")).to_have_attribute("value", "100")
    assert offsets.count(0) == 1, offsets  # never started again from the beginning
    assert offsets.count(2 * mib) >= 2, offsets  # the cut chunk was sent again
    assert offsets == sorted(offsets), offsets
    screenshot("resumed", sizes=("phone",))
    assert _stage_and_documents(live_server, referral_id) == (
        "mri_review",
        [("mri_study", "patient")],
    )
