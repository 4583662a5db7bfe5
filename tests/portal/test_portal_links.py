"""Every link the patient's page renders is followed: none is a server error, and a PDF
link gives a real PDF. The referral walks the real pipeline (MRI, review, plan, acceptance,
trip, stay), and the page is crawled at each stage."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import pytest

from crm.core.db import utcnow
from crm.followup.queries import check_ins_of
from crm.patients import links
from crm.plans.queries import current_plan
from crm.travel import operations as travel
from tests.messaging.support import NO_QUIET_HOURS
from tests.plans.support import plan_body, reviewed_as_candidate
from tests.portal.shown import shown_fields
from tests.travel.support import trip_around, utc

BASE = "http://localhost"


@dataclass
class _Form:
    action: str
    method: str
    fields: dict[str, str] = field(default_factory=dict)


class _Links(HTMLParser):
    """Every `href` and `action` in a page; a form keeps its hidden fields' values."""

    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []
        self.forms: list[_Form] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {name: value or "" for name, value in attrs}
        if "href" in found:
            self.hrefs.append(found["href"])
        if tag == "form":
            self.forms.append(_Form(found.get("action", ""), found.get("method", "get").lower()))
        if tag == "input" and self.forms and found.get("type") == "hidden":
            self.forms[-1].fields[found.get("name", "")] = found.get("value", "")


def _in_app(url: str, page: str) -> str | None:
    """The app-relative path of a link, or None for one that leaves the app (tel:, mailto:)."""
    absolute = urlsplit(urljoin(BASE + page, url))
    if absolute.scheme not in ("http", "https") or absolute.netloc != "localhost":
        return None
    return absolute.path + (f"?{absolute.query}" if absolute.query else "")


def _crawl(client, page: str) -> list[str]:
    """Render `page`, follow every link and submit every form it shows; the paths followed."""
    response = client.get(page)
    assert response.status_code == 200, response.get_data(as_text=True)
    parser = _Links()
    parser.feed(response.get_data(as_text=True))
    followed = []
    for href in parser.hrefs:
        if (path := _in_app(href, page)) is None:
            continue
        target = client.get(path)
        assert target.status_code < 500, (path, target.get_data(as_text=True))
        if path.endswith(".pdf"):
            assert target.status_code == 200, path
            assert target.mimetype == "application/pdf"
            assert target.data.startswith(b"%PDF-") and target.data.rstrip().endswith(b"%%EOF")
        followed.append(path)
    for form in parser.forms:
        if (path := _in_app(form.action or page, page)) is None:
            continue
        send = client.post if form.method == "post" else client.get
        target = send(path, data=form.fields)  # only what the page itself fills in
        assert target.status_code < 500, (path, target.get_data(as_text=True))
        followed.append(path)
    return followed


@pytest.fixture
def walk(app, client, factory, session, monkeypatch):
    """A referral's page and a function that moves the referral on, one real step at a time."""
    monkeypatch.setitem(app.config["CRM"], "QUIET_HOURS", NO_QUIET_HOURS)
    agency, coordinator = factory.agency(), factory.staff("coordinator")
    referral = reviewed_as_candidate(factory, agency, coordinator)
    api = f"/api/v1/referrals/{referral.id}"
    page = f"/p/{links.token_for(links.link_for(referral.id))}"
    session.commit()

    admitted_at = utcnow() - timedelta(days=2)

    def step(name: str) -> None:
        response = None
        if name == "plan_offered":
            response = client.post(f"{api}/plans", json=plan_body(), headers=coordinator.headers())
        elif name == "plan_accepted":
            data = {"plan_id": current_plan(referral.id).id, "ack_info": "yes", "ack_data": "yes"}
            data.update(shown_fields(client, page))
            response = client.post(f"{page}/accept", data=data)
        elif name == "travel_booked":
            trip = trip_around(admitted_at)
            response = client.put(f"{api}/trip", json=trip, headers=coordinator.headers())
        elif name == "in_treatment":  # the stay as `discharged_referral` records it
            travel.record_admission(referral, admitted_at, coordinator.actor)
        elif name == "post_op":
            travel.record_discharge(referral, utcnow() - timedelta(hours=1), coordinator.actor)
            for check_in in check_ins_of(referral.id):
                check_in.due_at = utc(2000, 1, 1)  # every check-in open now
        session.commit()
        if response is not None:
            assert response.status_code < 400, response.get_data(as_text=True)
        session.refresh(referral)
        assert referral.stage == name

    return page, step


STAGES = ["plan_offered", "plan_accepted", "travel_booked", "in_treatment", "post_op"]


def test_every_link_the_patients_page_renders_works_at_every_stage(client, walk):
    page, step = walk
    followed = set(_crawl(client, page))  # in review: nothing to act on yet
    for stage in STAGES:
        step(stage)
        followed |= set(_crawl(client, page))
    assert {f"{page}/accept", f"{page}/visa-letter.pdf", f"{page}/check-in"} <= followed


def test_the_visa_letter_link_gives_the_patient_a_pdf(client, walk):
    page, step = walk
    for stage in STAGES[:3]:
        step(stage)
    response = client.get(f"{page}/visa-letter.pdf")
    assert response.status_code == 200
    assert response.mimetype == "application/pdf"
    assert response.data.startswith(b"%PDF-")
    assert response.headers["Cache-Control"] == "no-store"


def test_without_a_trip_asking_for_one_there_is_no_visa_letter(client, walk):
    page, _step = walk
    assert client.get(f"{page}/visa-letter.pdf").status_code == 404
