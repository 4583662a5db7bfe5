"""The pure state machine: every legal move, every illegal one, guards and time in stage."""

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crm.referrals.stages import (
    ACTIVE,
    ALL_STAGES,
    MRI_ON_FILE,
    PIPELINE,
    TERMINAL,
    IllegalTransition,
    LostReason,
    Stage,
    StageVisit,
    TransitionRefused,
    TransitionRequest,
    allowed_targets,
    plan_transition,
    time_in_stages,
)

FORWARD = {
    (Stage.ENQUIRY, Stage.AWAITING_MRI),
    (Stage.ENQUIRY, Stage.MRI_REVIEW),
    (Stage.AWAITING_MRI, Stage.MRI_REVIEW),
    (Stage.MRI_REVIEW, Stage.PLAN_OFFERED),
    (Stage.MRI_REVIEW, Stage.AWAITING_MRI),
    (Stage.PLAN_OFFERED, Stage.PLAN_ACCEPTED),
    (Stage.PLAN_ACCEPTED, Stage.TRAVEL_BOOKED),
    (Stage.TRAVEL_BOOKED, Stage.IN_TREATMENT),
    (Stage.IN_TREATMENT, Stage.POST_OP),
    (Stage.POST_OP, Stage.FOLLOW_UP),
    (Stage.FOLLOW_UP, Stage.COMPLETED),
}


def legal(current: Stage, target: Stage) -> bool:
    if current in TERMINAL or current is Stage.ON_HOLD:
        return False
    return (current, target) in FORWARD or target in {Stage.LOST, Stage.ON_HOLD}


def request(current, target, **kwargs):
    if target is Stage.LOST:
        kwargs.setdefault("reason", LostReason.PRICE)
    return TransitionRequest(current, target, **kwargs)


@pytest.mark.parametrize("current", [s for s in ALL_STAGES if s is not Stage.ON_HOLD])
@pytest.mark.parametrize("target", ALL_STAGES)
def test_every_pair_of_stages_is_allowed_exactly_when_the_pipeline_says_so(current, target):
    if legal(current, target):
        plan = plan_transition(request(current, target))
        assert (plan.from_stage, plan.to_stage) == (current, target)
    else:
        with pytest.raises(IllegalTransition):
            plan_transition(request(current, target))


@pytest.mark.parametrize("held_from", sorted(ACTIVE))
@pytest.mark.parametrize("target", ALL_STAGES)
def test_on_hold_only_resumes_to_the_stage_it_left_or_is_lost(held_from, target):
    hold = request(Stage.ON_HOLD, target, held_from=held_from)
    if target in {held_from, Stage.LOST}:
        assert plan_transition(hold).to_stage is target
    else:
        with pytest.raises(IllegalTransition):
            plan_transition(hold)


def test_putting_on_hold_remembers_the_stage_it_left():
    plan = plan_transition(request(Stage.PLAN_OFFERED, Stage.ON_HOLD))
    assert plan.held_from is Stage.PLAN_OFFERED


def test_terminal_stages_allow_no_move_at_all():
    assert all(allowed_targets(stage) == frozenset() for stage in TERMINAL)


def test_lost_without_a_reason_is_refused_by_name():
    with pytest.raises(TransitionRefused) as refused:
        plan_transition(TransitionRequest(Stage.ENQUIRY, Stage.LOST))
    assert refused.value.failures[0].guard == "lost_reason_required"


def test_lost_with_an_unknown_reason_is_refused():
    with pytest.raises(TransitionRefused, match="unknown reason"):
        plan_transition(TransitionRequest(Stage.ENQUIRY, Stage.LOST, reason="bored"))


def test_lost_for_other_reason_needs_a_note():
    with pytest.raises(TransitionRefused, match="needs a note"):
        plan_transition(TransitionRequest(Stage.ENQUIRY, Stage.LOST, reason="other"))
    plan = plan_transition(
        TransitionRequest(Stage.ENQUIRY, Stage.LOST, reason="other", note="moved abroad")
    )
    assert plan.reason == "other"


def test_a_pluggable_guard_refuses_until_its_fact_is_supplied():
    guards = (MRI_ON_FILE,)
    with pytest.raises(TransitionRefused) as refused:
        plan_transition(TransitionRequest(Stage.AWAITING_MRI, Stage.MRI_REVIEW), guards)
    assert refused.value.failures[0].guard == "mri_document_present"
    allowed = TransitionRequest(Stage.AWAITING_MRI, Stage.MRI_REVIEW, facts={"has_mri": True})
    assert plan_transition(allowed, guards).to_stage is Stage.MRI_REVIEW


def test_resuming_from_hold_does_not_rerun_the_guards_of_the_stage_it_left():
    resume = TransitionRequest(Stage.ON_HOLD, Stage.MRI_REVIEW, held_from=Stage.MRI_REVIEW)
    assert plan_transition(resume, (MRI_ON_FILE,)).to_stage is Stage.MRI_REVIEW


def test_time_in_stages_sums_repeat_visits_and_runs_the_current_one_until_now():
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    visits = [
        StageVisit(Stage.ENQUIRY, t0),
        StageVisit(Stage.AWAITING_MRI, t0 + timedelta(hours=2)),
        StageVisit(Stage.MRI_REVIEW, t0 + timedelta(hours=5)),
        StageVisit(Stage.AWAITING_MRI, t0 + timedelta(hours=6)),
    ]
    totals = time_in_stages(visits, now=t0 + timedelta(hours=10))
    assert totals == {
        Stage.ENQUIRY: timedelta(hours=2),
        Stage.AWAITING_MRI: timedelta(hours=3 + 4),
        Stage.MRI_REVIEW: timedelta(hours=1),
    }


def test_a_terminal_stage_accumulates_no_time():
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    visits = [StageVisit(Stage.FOLLOW_UP, t0), StageVisit(Stage.COMPLETED, t0 + timedelta(days=1))]
    totals = time_in_stages(visits, now=t0 + timedelta(days=30))
    assert totals == {Stage.FOLLOW_UP: timedelta(days=1)}


@given(st.lists(st.sampled_from(ALL_STAGES), max_size=30))
def test_any_walk_only_ever_lands_on_allowed_stages(targets):
    current, held = Stage.ENQUIRY, None
    for target in targets:
        try:
            plan = plan_transition(request(current, target, held_from=held))
        except IllegalTransition:
            assert target not in allowed_targets(current, held)
            continue
        assert target in allowed_targets(current, held)
        current, held = plan.to_stage, plan.held_from
    assert current in ALL_STAGES
    assert (current is Stage.ON_HOLD) == (held is not None)


def test_the_pipeline_runs_from_enquiry_to_completed():
    assert PIPELINE[0] is Stage.ENQUIRY
    assert PIPELINE[-1] is Stage.COMPLETED
