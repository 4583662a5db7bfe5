"""The retention schedule read set-wise: persons across links, erased rows, holds, the
horizon, and a fixed number of reads however many patients there are."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import event

from crm.core.db import utcnow
from crm.extensions import db
from crm.privacy.queries import RetentionDue, retention_schedule
from tests.privacy.retention_rows import Rows, periods, schedule_one_person_at_a_time

YEARLY = periods(completed=365, lost=30)


@pytest.fixture
def now():
    return utcnow()


@pytest.fixture
def rows(session, now) -> Rows:
    return Rows(session, now)


def schedule(now, settings=YEARLY, horizon_days: int = 0) -> list[RetentionDue]:
    found = retention_schedule(settings, now, horizon_days)
    assert found == schedule_one_person_at_a_time(settings, now, horizon_days)
    return found


def test_a_person_with_a_linked_row_still_open_is_not_due(rows, now):
    ended, still_open = rows.patient(), rows.patient()
    rows.referral(ended, "lost", days_ago=400)
    rows.referral(still_open, "follow_up", days_ago=400)
    rows.link(still_open, ended)
    assert schedule(now) == []


def test_a_completion_on_a_linked_row_decides_for_the_whole_person(rows, now):
    lost_lately, completed_long_ago = rows.patient(), rows.patient()
    rows.referral(lost_lately, "lost", days_ago=5)
    done = rows.referral(completed_long_ago, "completed", days_ago=400)
    rows.link(lost_lately, completed_long_ago)
    assert schedule(now) == [
        RetentionDue(
            lost_lately.id, "completed", done.stage_entered_at, now - timedelta(days=35), False
        )
    ]


def test_a_recent_completion_on_a_linked_row_keeps_an_old_loss(rows, now):
    lost_long_ago, completed_lately = rows.patient(), rows.patient()
    rows.referral(lost_long_ago, "lost", days_ago=400)
    rows.referral(completed_lately, "completed", days_ago=100)
    rows.link(completed_lately, lost_long_ago)
    assert schedule(now) == []


def test_links_are_followed_transitively_and_name_the_lowest_row(rows, now):
    first, second, third = rows.patient(), rows.patient(), rows.patient()
    rows.referral(third, "lost", days_ago=50)
    rows.referral(second, "lost", days_ago=40)
    rows.link(third, second)
    rows.link(first, second)  # `first` has no referral: still the person's lowest id
    (item,) = schedule(now)
    assert (item.patient_id, item.basis, item.due_at) == (
        first.id,
        "lost",
        now - timedelta(days=10),
    )


def test_dismissed_and_open_matches_join_nobody(rows, now):
    one, other, third = rows.patient(), rows.patient(), rows.patient()
    rows.referral(one, "lost", days_ago=50)
    rows.referral(other, "enquiry", days_ago=50)
    rows.referral(third, "enquiry", days_ago=50)
    rows.link(other, one, status="dismissed")
    rows.link(third, one, status="open")
    assert [item.patient_id for item in schedule(now)] == [one.id]


def test_a_merged_tombstone_belongs_to_its_survivor(rows, now):
    tombstone, survivor = rows.patient(), rows.patient()
    rows.referral(survivor, "lost", days_ago=60)
    rows.merged_into(tombstone, survivor)
    rows.hold(tombstone)  # a hold left on the tombstone still holds the person
    (item,) = schedule(now)
    assert (item.patient_id, item.held) == (tombstone.id, True)


def test_an_erased_row_still_counts_its_referrals(rows, now):
    erased, kept = rows.patient(), rows.patient()
    rows.referral(erased, "lost", days_ago=10)
    rows.referral(kept, "lost", days_ago=300)
    rows.erased(erased)
    rows.link(kept, erased)
    assert schedule(now) == []
    (item,) = schedule(now, horizon_days=20)
    assert (item.patient_id, item.due_at) == (erased.id, now + timedelta(days=20))


def test_a_person_whose_rows_are_all_erased_is_not_listed_again(rows, now):
    one, other = rows.patient(), rows.patient()
    rows.referral(one, "lost", days_ago=300)
    rows.referral(other, "completed", days_ago=3000)
    rows.link(one, other)
    rows.erased(one)
    rows.erased(other)
    assert schedule(now) == []


def test_a_hold_in_force_on_any_row_holds_the_person_and_a_lifted_one_does_not(rows, now):
    held, linked, lifted = rows.patient(), rows.patient(), rows.patient()
    rows.referral(held, "lost", days_ago=90)
    rows.referral(lifted, "lost", days_ago=80)
    rows.link(linked, held)
    rows.hold(linked)
    rows.hold(lifted, lifted=True)
    assert [(item.patient_id, item.held) for item in schedule(now)] == [
        (held.id, True),
        (lifted.id, False),
    ]


def test_the_horizon_includes_the_last_day_and_nothing_after(rows, now):
    soon, later = rows.patient(), rows.patient()
    rows.referral(soon, "lost", days_ago=20)
    rows.referral(later, "lost", days_ago=19)
    assert schedule(now) == []
    assert [item.patient_id for item in schedule(now, horizon_days=10)] == [soon.id]
    assert [item.patient_id for item in schedule(now, horizon_days=11)] == [soon.id, later.id]


def test_the_same_day_is_ordered_by_patient_id(rows, now):
    first, second = rows.patient(), rows.patient()
    rows.referral(second, "lost", days_ago=40)
    rows.referral(first, "lost", days_ago=40)
    assert [item.patient_id for item in schedule(now)] == [first.id, second.id]


def test_a_zero_period_never_erases_that_basis(rows, now):
    completed, lost = rows.patient(), rows.patient()
    rows.referral(completed, "completed", days_ago=5000)
    rows.referral(lost, "lost", days_ago=5000)
    only_lost = schedule(now, periods(completed=0, lost=30))
    assert [(item.patient_id, item.basis) for item in only_lost] == [(lost.id, "lost")]
    assert schedule(now, periods(completed=0, lost=0)) == []


def test_the_schedule_reads_three_times_however_many_patients(connection, rows, now):
    for n in range(30):
        patient = rows.patient()
        rows.referral(patient, "lost", days_ago=40 + n)
        rows.hold(patient, lifted=n % 2 == 0)
        if n % 3:
            rows.link(patient, rows.patient())
    statements: list[str] = []

    def count(_conn, _cursor, statement, *_args):
        statements.append(statement)

    db.session.flush()
    event.listen(connection, "before_cursor_execute", count)
    try:
        due = retention_schedule(YEARLY, now)
    finally:
        event.remove(connection, "before_cursor_execute", count)
    assert len(due) == 30 and sum(item.held for item in due) == 15
    assert len(statements) == 3


def test_an_erased_rows_open_referral_still_keeps_the_person(rows, now):
    erased, kept = rows.patient(), rows.patient()
    rows.referral(erased, "enquiry", days_ago=400)
    rows.referral(kept, "lost", days_ago=400)
    rows.erased(erased)
    rows.link(kept, erased)
    assert schedule(now) == []
