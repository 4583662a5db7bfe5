"""Domain events: subscribers run in the publisher's transaction, per app, in order."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from crm import create_app
from crm.core.events import Event, EventBus, publish
from crm.features import ALL_FEATURES, build
from crm.referrals.events import ReferralSubmitted, StageEntered
from crm.referrals.operations import move_to_stage


@dataclass(frozen=True)
class _Base(Event):
    value: int


@dataclass(frozen=True)
class _Derived(_Base):
    pass


def test_a_subscriber_to_a_base_event_hears_every_event_derived_from_it():
    bus, heard = EventBus(), []
    bus.subscribe(_Base, lambda event: heard.append(("base", event.value)))
    bus.subscribe(_Derived, lambda event: heard.append(("derived", event.value)))
    bus.publish(_Derived(1))
    bus.publish(_Base(2))
    assert heard == [("derived", 1), ("base", 1), ("base", 2)]


def test_subscribing_the_same_handler_twice_runs_it_once():
    bus, heard = EventBus(), []
    handler = heard.append
    bus.subscribe(_Base, handler)
    bus.subscribe(_Base, handler)
    bus.publish(_Base(1))
    assert heard == [_Base(1)]


def test_every_feature_is_wired_by_default_and_an_unknown_one_is_refused():
    assert build().features == ALL_FEATURES
    with pytest.raises(ValueError, match="unknown features"):
        build(["nudges", "fax"])


def test_two_apps_have_their_own_wiring(app):
    other = create_app(
        {"ENV": "test", "DATABASE_URL": "sqlite://", "SECRET_KEY": "another-secret-key-1234567"}
    )
    assert other.extensions["crm.events"] is not app.extensions["crm.events"]
    assert other.extensions["crm.guards"] is not app.extensions["crm.guards"]


def test_a_move_publishes_the_stage_it_entered_with_who_and_why(factory, features, coordinator):
    heard: list[StageEntered] = []
    features.only().events.subscribe(StageEntered, heard.append)
    referral = factory.referral(factory.agency())
    move_to_stage(referral, "on_hold", coordinator.actor, note="patient travelling")
    move_to_stage(referral, "enquiry", coordinator.actor)
    assert [(e.from_stage, e.to_stage, e.note) for e in heard] == [
        ("enquiry", "on_hold", "patient travelling"),
        ("on_hold", "enquiry", None),
    ]
    assert heard[0].actor == coordinator.actor
    assert heard[1].resumed and not heard[0].resumed


def test_with_no_feature_wired_a_submission_schedules_no_nudge(factory, features, session):
    from crm.nudges.models import ScheduledNudge

    heard: list[ReferralSubmitted] = []
    features.only().events.subscribe(ReferralSubmitted, heard.append)
    referral = factory.referral(factory.agency())
    assert [event.referral for event in heard] == [referral]
    assert session.query(ScheduledNudge).filter_by(referral_id=referral.id).count() == 0


def test_a_subscriber_that_fails_fails_the_operation_that_published(factory, features):
    def broken(event):
        raise RuntimeError("subscriber down")

    features.only().events.subscribe(_Base, broken)
    with pytest.raises(RuntimeError, match="subscriber down"):
        publish(_Base(1))
