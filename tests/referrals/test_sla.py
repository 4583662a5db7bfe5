"""Service levels: which stage is held to which promise, and when a visit is late."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from crm.referrals.sla import level_for, service_levels

SETTINGS = {"FIRST_RESPONSE_SLA_HOURS": 24, "REVIEW_SLA_HOURS": 48, "PLAN_ANSWER_SLA_DAYS": 14}
ENTERED = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def test_three_stages_are_held_to_a_service_level():
    assert [(s.name, s.stage) for s in service_levels(SETTINGS)] == [
        ("first_response", "enquiry"),
        ("mri_review", "mri_review"),
        ("plan_answer", "plan_offered"),
    ]


def test_a_stage_without_a_promise_has_no_level():
    assert level_for("travel_booked", SETTINGS) is None


def test_an_mri_reviewed_within_48_hours_is_on_time_and_a_minute_later_is_late():
    review = level_for("mri_review", SETTINGS)
    assert review.due_at(ENTERED) == ENTERED + timedelta(hours=48)
    assert not review.breached(ENTERED, ENTERED + timedelta(hours=48))
    assert review.breached(ENTERED, ENTERED + timedelta(hours=48, minutes=1))
