"""The referral pipeline as a pure state machine: no Flask, no database.

`plan_transition` decides whether a move is allowed and what it records; the caller
supplies the facts the guards look at (whether an MRI is on file, what the specialist
decided, ...) and persists the result. Guards are pluggable: a feature that owns a fact
registers a guard for the stages that depend on it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any


class Stage(StrEnum):
    ENQUIRY = "enquiry"
    AWAITING_MRI = "awaiting_mri"
    MRI_REVIEW = "mri_review"
    PLAN_OFFERED = "plan_offered"
    PLAN_ACCEPTED = "plan_accepted"
    TRAVEL_BOOKED = "travel_booked"
    IN_TREATMENT = "in_treatment"
    POST_OP = "post_op"
    FOLLOW_UP = "follow_up"
    COMPLETED = "completed"
    LOST = "lost"
    ON_HOLD = "on_hold"


PIPELINE: tuple[Stage, ...] = (
    Stage.ENQUIRY,
    Stage.AWAITING_MRI,
    Stage.MRI_REVIEW,
    Stage.PLAN_OFFERED,
    Stage.PLAN_ACCEPTED,
    Stage.TRAVEL_BOOKED,
    Stage.IN_TREATMENT,
    Stage.POST_OP,
    Stage.FOLLOW_UP,
    Stage.COMPLETED,
)
TERMINAL: frozenset[Stage] = frozenset({Stage.COMPLETED, Stage.LOST})
ACTIVE: frozenset[Stage] = frozenset(PIPELINE) - TERMINAL
ALL_STAGES: tuple[Stage, ...] = (*PIPELINE, Stage.LOST, Stage.ON_HOLD)


class LostReason(StrEnum):
    NOT_A_CANDIDATE = "not_a_candidate"
    PRICE = "price"
    UNREACHABLE = "unreachable"
    CHOSE_ANOTHER_PROVIDER = "chose_another_provider"
    MEDICAL_CONTRAINDICATION = "medical_contraindication"
    TRAVEL_NOT_POSSIBLE = "travel_not_possible"
    PATIENT_WITHDREW = "patient_withdrew"
    DUPLICATE = "duplicate"
    OTHER = "other"


# The forward moves of the pipeline, plus the one step back a specialist may ask for.
_FORWARD: dict[Stage, frozenset[Stage]] = {
    Stage.ENQUIRY: frozenset({Stage.AWAITING_MRI, Stage.MRI_REVIEW}),
    Stage.AWAITING_MRI: frozenset({Stage.MRI_REVIEW}),
    Stage.MRI_REVIEW: frozenset({Stage.PLAN_OFFERED, Stage.AWAITING_MRI}),
    Stage.PLAN_OFFERED: frozenset({Stage.PLAN_ACCEPTED}),
    Stage.PLAN_ACCEPTED: frozenset({Stage.TRAVEL_BOOKED}),
    Stage.TRAVEL_BOOKED: frozenset({Stage.IN_TREATMENT}),
    Stage.IN_TREATMENT: frozenset({Stage.POST_OP}),
    Stage.POST_OP: frozenset({Stage.FOLLOW_UP}),
    Stage.FOLLOW_UP: frozenset({Stage.COMPLETED}),
}


def allowed_targets(current: Stage, held_from: Stage | None = None) -> frozenset[Stage]:
    """Every stage `current` may move to, guards aside."""
    if current in TERMINAL:
        return frozenset()
    if current is Stage.ON_HOLD:
        resume = {held_from} if held_from else set()
        return frozenset({*resume, Stage.LOST})
    return _FORWARD[current] | {Stage.LOST, Stage.ON_HOLD}


@dataclass(frozen=True)
class TransitionRequest:
    current: Stage
    target: Stage
    held_from: Stage | None = None
    reason: str | None = None
    note: str | None = None
    facts: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class GuardFailure:
    guard: str
    message: str


@dataclass(frozen=True)
class Guard:
    """A named check on a move into `targets`; `check` returns a message when it fails."""

    name: str
    targets: frozenset[Stage]
    check: Callable[[TransitionRequest], str | None]

    def applies_to(self, request: TransitionRequest) -> bool:
        resuming = request.current is Stage.ON_HOLD and request.target is request.held_from
        return request.target in self.targets and not resuming


@dataclass(frozen=True)
class TransitionPlan:
    """What to persist: the new stage and what the history row says."""

    from_stage: Stage
    to_stage: Stage
    held_from: Stage | None
    reason: str | None
    note: str | None


class IllegalTransition(Exception):
    def __init__(self, current: Stage, target: Stage):
        super().__init__(f"a referral in {current} cannot move to {target}")
        self.current, self.target = current, target


class TransitionRefused(Exception):
    def __init__(self, failures: list[GuardFailure]):
        super().__init__("; ".join(f"{f.guard}: {f.message}" for f in failures))
        self.failures = failures


def _lost_needs_reason(request: TransitionRequest) -> str | None:
    if request.reason is None:
        return "a reason is required to mark a referral lost"
    if request.reason not in LostReason.__members__.values():
        return f"unknown reason {request.reason!r}; one of {', '.join(LostReason)}"
    if request.reason == LostReason.OTHER and not (request.note or "").strip():
        return "reason 'other' needs a note saying what happened"
    return None


def _fact_required(fact: str, message: str) -> Callable[[TransitionRequest], str | None]:
    def check(request: TransitionRequest) -> str | None:
        return None if request.facts.get(fact) else message

    return check


# Guards every deployment has. Features that own a fact add theirs with `guards_for`.
CORE_GUARDS: tuple[Guard, ...] = (
    Guard("lost_reason_required", frozenset({Stage.LOST}), _lost_needs_reason),
)

# Guards whose facts come from later features (documents, reviews, plans, consent).
# They are defined here, in one place, and switched on by the feature that supplies the fact.
MRI_ON_FILE = Guard(
    "mri_document_present",
    frozenset({Stage.MRI_REVIEW}),
    _fact_required("has_mri", "an MRI study must be uploaded before the specialist review"),
)
SPECIALIST_SAYS_CANDIDATE = Guard(
    "specialist_decided_candidate",
    frozenset({Stage.PLAN_OFFERED}),
    _fact_required("is_candidate", "a specialist must record that the patient is a candidate"),
)
PLAN_ACCEPTED_WITH_CONSENT = Guard(
    "accepted_plan_and_consent",
    frozenset({Stage.TRAVEL_BOOKED}),
    _fact_required("plan_accepted_with_consent", "an accepted plan and recorded consent needed"),
)

# Stages that say a fact happened are entered only once the fact is recorded: the
# operation that records it (accept the plan, book the trip, record the admission, the
# discharge, the departure) records it first and then moves; a bare transition is refused.
PLAN_ACCEPTANCE_RECORDED = Guard(
    "plan_acceptance_recorded",
    frozenset({Stage.PLAN_ACCEPTED}),
    _fact_required(
        "plan_accepted", "the patient accepts the plan on their link; a move alone accepts nothing"
    ),
)
TRIP_BOOKED = Guard(
    "trip_booked",
    frozenset({Stage.TRAVEL_BOOKED}),
    _fact_required("trip_booked", "book the trip (PUT .../trip); the booking moves the referral"),
)
ADMISSION_RECORDED = Guard(
    "admission_recorded",
    frozenset({Stage.IN_TREATMENT}),
    _fact_required("admitted", "record the admission (POST .../admission); it moves the referral"),
)
DISCHARGE_RECORDED = Guard(
    "discharge_recorded",
    frozenset({Stage.POST_OP}),
    _fact_required(
        "discharged", "record the discharge (POST .../discharge); it moves the referral"
    ),
)
DEPARTURE_RECORDED = Guard(
    "departure_recorded",
    frozenset({Stage.FOLLOW_UP}),
    _fact_required("departed", "record the departure (POST .../departure); it moves the referral"),
)
NO_OPEN_URGENT_ALERT = Guard(
    "no_open_urgent_alert",
    frozenset({Stage.COMPLETED}),
    _fact_required(
        "urgent_alerts_closed",
        "an urgent follow-up alert is still open: close its task after speaking to the patient",
    ),
)


def plan_transition(
    request: TransitionRequest, guards: Iterable[Guard] = CORE_GUARDS
) -> TransitionPlan:
    if request.target not in allowed_targets(request.current, request.held_from):
        raise IllegalTransition(request.current, request.target)
    failures = [
        GuardFailure(guard.name, message)
        for guard in guards
        if guard.applies_to(request) and (message := guard.check(request)) is not None
    ]
    if failures:
        raise TransitionRefused(failures)
    held_from = request.current if request.target is Stage.ON_HOLD else None
    return TransitionPlan(request.current, request.target, held_from, request.reason, request.note)


@dataclass(frozen=True)
class StageVisit:
    stage: Stage
    entered_at: datetime


def time_in_stages(visits: Iterable[StageVisit], now: datetime) -> dict[Stage, timedelta]:
    """Total time spent in each stage; the last visit runs until `now` unless terminal."""
    ordered = sorted(visits, key=lambda visit: visit.entered_at)
    totals: dict[Stage, timedelta] = {}
    for visit, following in zip(ordered, [*ordered[1:], None], strict=True):
        if following is None and visit.stage in TERMINAL:
            continue
        until = following.entered_at if following else now
        totals[visit.stage] = totals.get(visit.stage, timedelta()) + (until - visit.entered_at)
    return totals
