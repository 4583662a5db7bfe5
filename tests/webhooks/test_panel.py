"""The agency panel's webhooks page through Flask's test client, signed in as an agency's
user: add an endpoint (secret shown once), rotate, disable/enable, delete, the delivery
log and a redelivery; another agency's endpoint is a 404."""

from __future__ import annotations

import re
from itertools import count

import pytest

from crm.auth import operations as auth
from crm.auth.models import StaffUser
from crm.core.actors import SYSTEM
from crm.extensions import db
from crm.referrals.operations import move_to_stage
from crm.webhooks import operations
from tests.console.support import PASSWORD, csrf_token, sign_in
from tests.webhooks.support import URL, deliveries_of, endpoint_of, referral_of

pytestmark = pytest.mark.usefixtures("dns")
PAGE = "/agency/webhooks"
_numbers = count(1)


def agency_user(session, agency_id: int, time_zone: str = "Asia/Dubai") -> StaffUser:
    n = next(_numbers)
    user = StaffUser(
        email=f"agent{n}.webhooks@agency.example",
        name=f"Agent {n}",
        role="agency",
        agency_id=agency_id,
        time_zone=time_zone,
    )
    auth.set_password(user, PASSWORD)
    session.add(user)
    session.commit()
    return user


@pytest.fixture
def signed_in(client, session, agency):
    user = agency_user(session, agency.actor.agency_id)
    sign_in(client, user.email)
    return client


def _post(client, path: str, data: dict | None = None):
    return client.post(path, data={**(data or {}), "csrf_token": csrf_token(client, PAGE)})


def _add(client, **form):
    data = {"url": URL, "description": "our CRM", "event_types": ["referral.stage_changed"]}
    return _post(client, PAGE, {**data, **form})


def test_the_page_lists_the_agencys_endpoints_and_the_form(signed_in, agency):
    endpoint_of(agency, description="our CRM")
    page = signed_in.get(PAGE)
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert URL in text and "our CRM" in text
    assert 'name="event_types" value="checkin.alert"' in text


def test_the_menu_links_the_page(signed_in):
    assert f'href="{PAGE}"' in signed_in.get("/agency/").get_data(as_text=True)


def test_adding_an_endpoint_shows_its_secret_on_that_page_only(signed_in, agency):
    added = _add(signed_in)
    assert added.status_code == 200
    secret = re.search(r'id="new-secret">(whsec_[^<]+)<', added.get_data(as_text=True)).group(1)
    [endpoint] = operations.db.session.scalars(
        db.select(operations.WebhookEndpoint).where(
            operations.WebhookEndpoint.agency_id == agency.actor.agency_id
        )
    ).all()
    assert operations.secrets_in_force(endpoint) == [secret]
    assert secret not in signed_in.get(PAGE).get_data(as_text=True)


def test_an_unsafe_url_is_refused_in_words_and_the_form_kept(signed_in):
    refused = _add(signed_in, url="https://169.254.169.254/latest", description="kept")
    assert refused.status_code == 422
    text = refused.get_data(as_text=True)
    assert "metadata" in text
    assert 'value="kept"' in text


def test_no_event_chosen_is_refused_in_words(signed_in):
    refused = _add(signed_in, event_types=[])
    assert refused.status_code == 422
    assert "choose at least one event type" in refused.get_data(as_text=True)


def test_a_post_without_the_csrf_token_is_refused(signed_in):
    response = signed_in.post(PAGE, data={"url": URL, "event_types": ["plan.accepted"]})
    assert response.status_code == 400


def test_rotating_shows_the_new_secret_once(signed_in, agency):
    registered = endpoint_of(agency)
    rotated = _post(signed_in, f"{PAGE}/{registered.endpoint.id}/rotate")
    text = rotated.get_data(as_text=True)
    new = re.search(r'id="new-secret">(whsec_[^<]+)<', text).group(1)
    assert new != registered.secret
    assert "previous secret still signs" in text
    assert operations.secrets_in_force(registered.endpoint)[0] == new


def test_disabling_and_enabling_show_the_state_and_why(signed_in, agency):
    endpoint = endpoint_of(agency).endpoint
    _post(signed_in, f"{PAGE}/{endpoint.id}/disable")
    page = signed_in.get(PAGE).get_data(as_text=True)
    assert "<strong>disabled</strong>" in page and "disabled by Agent" in page
    _post(signed_in, f"{PAGE}/{endpoint.id}/enable")
    db.session.refresh(endpoint)
    assert endpoint.enabled


def test_deleting_removes_the_endpoint(signed_in, agency):
    endpoint = endpoint_of(agency).endpoint
    deleted = _post(signed_in, f"{PAGE}/{endpoint.id}/delete")
    assert deleted.status_code == 303
    assert "You have no endpoints yet." in signed_in.get(PAGE).get_data(as_text=True)


def test_another_agencys_endpoint_is_a_404(signed_in, factory):
    theirs = endpoint_of(factory.agency()).endpoint
    assert _post(signed_in, f"{PAGE}/{theirs.id}/delete").status_code == 404
    assert _post(signed_in, f"{PAGE}/{theirs.id}/rotate").status_code == 404


def test_the_delivery_log_shows_times_in_the_users_zone_and_redelivers(
    signed_in, agency, factory, without_clinical_guards
):
    endpoint = endpoint_of(agency, ["referral.stage_changed"]).endpoint
    move_to_stage(referral_of(factory, agency), "mri_review", SYSTEM)
    db.session.commit()
    [delivery] = deliveries_of(endpoint.id)
    page = signed_in.get(PAGE).get_data(as_text=True)
    assert delivery.event.public_id in page
    assert "+04" in page  # Asia/Dubai
    again = _post(signed_in, f"{PAGE}/deliveries/{delivery.id}/redeliver")
    assert again.status_code == 303
    assert len(deliveries_of(endpoint.id)) == 2
    assert "queued to be sent again" in signed_in.get(PAGE).get_data(as_text=True)
