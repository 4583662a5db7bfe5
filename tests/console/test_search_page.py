"""The search page: the pipeline's own search behind a box, with the API's filters, a next
page, and the header's box on every other page."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from crm.core.audit import AuditEvent
from crm.referrals.operations import move_to_stage
from tests.console.support import sign_in, staff_with_password

SEARCH = "/console/search"


@pytest.fixture
def signed_in(client, session):
    user = staff_with_password(session)
    sign_in(client, user.email)
    return user


def _text(client, path: str, status: int = 200) -> str:
    page = client.get(path)
    assert page.status_code == status, page.status_code
    return page.get_data(as_text=True)


def test_the_page_has_a_labelled_search_box_and_no_results_before_a_search(client, signed_in):
    html = _text(client, SEARCH)
    assert '<label for="search-q">Search referrals</label>' in html
    assert "Results" not in html and "Nothing found" not in html


def test_an_r_number_with_its_r_opens_that_referral_straight_away(
    client, session, factory, signed_in
):
    referral = factory.referral(factory.agency())
    response = client.get(f"{SEARCH}?q=r-{referral.id}")
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/console/referrals/{referral.id}")


def test_a_bare_number_lists_what_it_finds_rather_than_jumping(client, session, factory, signed_in):
    referral = factory.referral(factory.agency())
    html = _text(client, f"{SEARCH}?q={referral.id:06d}")
    assert f'href="/console/referrals/{referral.id}"' in html


def test_a_name_is_found_without_its_accents_and_shown_as_a_row(
    client, session, factory, signed_in
):
    agency = factory.agency("Porto Health Travel")
    found = factory.referral(agency, patient={"given_name": "João", "family_name": "Müllerová"})
    other = factory.referral(agency, patient={"family_name": "Schmidt"})
    html = _text(client, f"{SEARCH}?q=joao+mullerova")
    assert f'href="/console/referrals/{found.id}"' in html and found.reference in html
    assert "João Müllerová" in html
    assert "Porto Health Travel" in html and "Microdiscectomy" in html
    assert "Enquiry" in html and "Unassigned" in html
    assert f'href="/console/referrals/{other.id}"' not in html


def test_a_phone_is_found_however_it_is_dialled(client, session, factory, signed_in):
    referral = factory.referral(factory.agency(), patient={"phone": "+4917612345678"})
    html = _text(client, f"{SEARCH}?q=0176+1234+5678")
    assert f'href="/console/referrals/{referral.id}"' in html


def test_the_last_change_is_shown_in_the_viewers_zone(client, session, factory, signed_in):
    referral = factory.referral(factory.agency(), patient={"family_name": "Zonetest"})
    html = _text(client, f"{SEARCH}?q=zonetest")
    local = referral.updated_at.astimezone(ZoneInfo(signed_in.time_zone))
    assert local.strftime("%Y-%m-%d %H:%M") in html


def test_nothing_found_says_so_in_words(client, signed_in):
    assert "No referral matches" in _text(client, f"{SEARCH}?q=zzqx-nobody")


def test_a_one_letter_search_is_refused_in_words(client, signed_in):
    assert "Type at least 2 characters" in _text(client, f"{SEARCH}?q=a", 422)


def test_the_stage_filter_lists_that_stage_only(client, session, factory, signed_in):
    agency = factory.agency()
    lost, open_one = factory.referral(agency), factory.referral(agency)
    move_to_stage(lost, "lost", agency.actor, reason="price")
    session.commit()
    html = _text(client, f"{SEARCH}?stage=lost")
    assert f'href="/console/referrals/{lost.id}"' in html
    assert f'href="/console/referrals/{open_one.id}"' not in html
    assert "Filtered by" in html and "stage Lost" in html


def test_the_agency_and_unassigned_filters_are_the_apis(client, session, factory, signed_in):
    ours, theirs = factory.agency(), factory.agency()
    mine, other = factory.referral(ours), factory.referral(theirs)
    html = _text(client, f"{SEARCH}?agency_id={ours.actor.agency_id}&unassigned=true")
    assert f'href="/console/referrals/{mine.id}"' in html
    assert f'href="/console/referrals/{other.id}"' not in html


def test_a_long_result_has_a_next_page(client, session, factory, signed_in, monkeypatch):
    monkeypatch.setattr("crm.console.search.PAGE_SIZE", 2)
    agency = factory.agency()
    made = [factory.referral(agency, patient={"family_name": "Pagetest"}) for _ in range(3)]
    first = _text(client, f"{SEARCH}?q=pagetest")
    assert 'rel="next"' in first
    next_link = first.split('rel="next"')[0].rsplit('href="', 1)[1].split('"')[0]
    second = _text(client, next_link.replace("&amp;", "&"))
    assert f'href="/console/referrals/{made[0].id}"' in second
    assert 'rel="next"' not in second


def test_a_search_is_audited_with_the_referrals_listed(client, session, factory, signed_in):
    referral = factory.referral(factory.agency(), patient={"family_name": "Audittest"})
    _text(client, f"{SEARCH}?q=audittest")
    [listed] = session.scalars(
        select(AuditEvent).where(
            AuditEvent.action == "referral.list", AuditEvent.actor_id == signed_in.id
        )
    ).all()
    assert listed.detail["referral_ids"] == [referral.id]


def test_every_other_page_has_the_search_box_in_its_header(client, signed_in):
    html = _text(client, "/console/")
    assert 'action="/console/search"' in html
    assert '<label for="top-search-q" class="visually-hidden">Search referrals</label>' in html


def test_a_specialist_may_search_too(client, session, factory):
    referral = factory.referral(factory.agency(), patient={"family_name": "Specialistsees"})
    sign_in(client, staff_with_password(session, "specialist").email)
    assert f'href="/console/referrals/{referral.id}"' in _text(client, f"{SEARCH}?q=specialistsees")


def test_signed_out_the_search_sends_to_sign_in(client):
    response = client.get(f"{SEARCH}?q=r-1")
    assert response.status_code == 302
    assert "/console/sign-in" in response.headers["Location"]
