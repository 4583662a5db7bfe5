"""The review's procedure-specific findings come from the catalogue: microdiscectomy's
disc level, knee replacement's side and Kellgren-Lawrence grade, each checked against
the referral's own procedure."""

from __future__ import annotations

import pytest

from crm.referrals.operations import move_to_stage
from tests.helpers import API, assert_problem, field_errors
from tests.plans.support import in_review
from tests.plans.support import review as _review

KNEE_CANDIDATE = {
    "decision": "candidate",
    "findings": "Bone on bone in the medial compartment",
    "recommended_procedure": "knee_replacement",
    "side": "left",
    "kellgren_lawrence_grade": "4",
}


@pytest.fixture
def knee_in_review(factory, agency, coordinator):
    """A knee needs no MRI in the catalogue: the coordinator moves it to review."""
    referral = factory.referral(
        agency, procedure="knee_replacement", intake={"complaints": ["knee_pain"]}
    )
    move_to_stage(referral, "awaiting_mri", coordinator.actor)
    move_to_stage(referral, "mri_review", coordinator.actor)
    factory.session.commit()
    return referral


def _post(client, specialist, referral, body):
    return client.post(
        f"{API}/referrals/{referral.id}/reviews", json=body, headers=specialist.headers()
    )


def test_microdiscectomys_disc_level_is_still_taken_and_shown(
    client, factory, agency, coordinator, specialist
):
    referral = in_review(factory, agency, coordinator)
    response = _review(client, specialist, referral, disc_level="L4-L5")
    assert response.status_code == 201, response.json
    assert response.json["procedure_fields"] == {"disc_level": "L4-L5"}


def test_a_disc_level_not_in_the_catalogues_list_is_422_naming_it(
    client, factory, agency, coordinator, specialist
):
    referral = in_review(factory, agency, coordinator)
    response = _review(client, specialist, referral, disc_level="L4-5")
    errors = field_errors(assert_problem(response, 422, "validation-failed"))
    assert errors["disc_level"].startswith("'L4-5' is not one of: T12-L1, L1-L2")


def test_a_knee_review_records_the_side_and_the_grade(client, knee_in_review, specialist):
    response = _post(client, specialist, knee_in_review, KNEE_CANDIDATE)
    assert response.status_code == 201, response.json
    assert response.json["procedure_fields"] == {"side": "left", "kellgren_lawrence_grade": "4"}


def test_a_knee_review_without_the_side_is_422(client, knee_in_review, specialist):
    body = {k: v for k, v in KNEE_CANDIDATE.items() if k != "side"}
    response = _post(client, specialist, knee_in_review, body)
    assert "side" in field_errors(assert_problem(response, 422, "validation-failed"))


def test_a_grade_the_scale_does_not_have_is_422(client, knee_in_review, specialist):
    response = _post(
        client, specialist, knee_in_review, {**KNEE_CANDIDATE, "kellgren_lawrence_grade": "5"}
    )
    errors = field_errors(assert_problem(response, 422, "validation-failed"))
    assert "kellgren_lawrence_grade" in errors


def test_a_disc_level_is_no_finding_of_a_knee(client, knee_in_review, specialist):
    response = _post(client, specialist, knee_in_review, {**KNEE_CANDIDATE, "disc_level": "L4-L5"})
    errors = field_errors(assert_problem(response, 422, "validation-failed"))
    assert errors == {"disc_level": "not a field this endpoint takes"}
    response = _post(client, specialist, knee_in_review, KNEE_CANDIDATE)
    assert response.status_code == 201  # nothing was half-written by the refusal


def test_the_console_review_form_offers_the_knees_fields(
    client, session, knee_in_review, specialist
):
    from tests.console.test_clinical_forms import _signed_in, _text

    _signed_in(client, session, "specialist")
    page = _text(client.get(f"/console/referrals/{knee_in_review.id}/review"))
    assert '<select id="side" name="side"' in page
    assert '<option value="4">4: severe</option>' in page
    assert 'name="disc_level"' not in page
