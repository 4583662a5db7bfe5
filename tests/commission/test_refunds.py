"""A refund recorded by a manager reverses the commission on it, in proportion."""

from datetime import timedelta

import pytest

from crm.commission.jobs import make_entries_payable
from crm.core.db import utcnow
from crm.referrals.operations import move_to_stage
from tests.commission.support import (
    PLAN_TOTAL,
    accepted,
    add_contract,
    into_treatment,
    ledger,
    refund,
    treated,
)
from tests.helpers import assert_problem, field_errors

pytestmark = pytest.mark.usefixtures("no_stay_guards")
COMMISSION = PLAN_TOTAL // 10  # 10% of 710,000


@pytest.fixture
def accrued(client, factory, agency, coordinator, manager):
    add_contract(client, manager, agency)
    return treated(client, factory, agency, coordinator)


def test_a_partial_refund_reverses_the_same_share_of_the_commission(
    session, client, manager, agency, accrued
):
    response = refund(client, manager, accrued, PLAN_TOTAL // 10)
    assert response.status_code == 201, response.json
    assert response.json["reversed"] == [
        {"agency_id": agency.actor.agency_id, "amount_minor": -COMMISSION // 10, "currency": "EUR"}
    ]
    assert [row[1:] for row in ledger(session, accrued)] == [
        ("accrued", COMMISSION, "treatment"),
        ("reversed", -COMMISSION // 10, "refund"),
    ]


def test_a_full_refund_reverses_the_whole_commission(session, client, manager, accrued):
    refund(client, manager, accrued, PLAN_TOTAL)
    assert sum(row[2] for row in ledger(session, accrued)) == 0


def test_partial_refunds_that_add_up_to_the_plan_reverse_the_accrual_exactly(
    session, client, manager, accrued
):
    for amount in (236_667, 236_667, 236_666):  # each a third, rounded
        assert refund(client, manager, accrued, amount).status_code == 201
    reversals = [row[2] for row in ledger(session, accrued) if row[1] == "reversed"]
    assert reversals == [-23_667, -23_666, -23_667]  # round(A*R/T) step by step
    assert sum(reversals) == -COMMISSION


def test_a_refund_in_another_currency_than_the_plan_is_refused(client, manager, accrued):
    body = assert_problem(refund(client, manager, accrued, 100, "USD"), 422, "validation-failed")
    assert "never converted" in field_errors(body)["currency"]


def test_a_refund_beyond_what_was_paid_is_refused(client, manager, accrued):
    refund(client, manager, accrued, PLAN_TOTAL - 10)
    body = assert_problem(refund(client, manager, accrued, 11), 422, "validation-failed")
    assert "at most 10" in field_errors(body)["amount_minor"]


def test_a_refund_needs_an_accepted_plan(client, factory, agency, manager):
    referral = factory.referral(agency)
    assert_problem(refund(client, manager, referral, 100), 409, "conflict")


def test_only_managers_record_refunds(client, coordinator, agency, accrued):
    for caller in (coordinator, agency):
        assert refund(client, caller, accrued, 100).status_code == 403


def test_a_replayed_refund_request_is_recorded_once(session, client, manager, accrued):
    for _ in range(2):
        response = refund(client, manager, accrued, 1000, **{"Idempotency-Key": "refund-1"})
        assert response.status_code == 201
    listed = client.get(f"/api/v1/referrals/{accrued.id}/refunds", headers=manager.headers())
    assert [r["amount_minor"] for r in listed.json] == [1000]
    assert [row[1] for row in ledger(session, accrued)] == ["accrued", "reversed"]


def test_a_refund_recorded_before_treatment_is_taken_off_the_accrual(
    session, client, factory, agency, coordinator, manager
):
    add_contract(client, manager, agency)
    referral = accepted(client, factory, factory.referral(agency), agency, coordinator)
    assert refund(client, manager, referral, PLAN_TOTAL // 2).json["reversed"] == []
    into_treatment(factory, referral, coordinator)
    assert [row[1:3] for row in ledger(session, referral)] == [
        ("accrued", COMMISSION),
        ("reversed", -COMMISSION // 2),
    ]


def test_a_refund_after_the_commission_became_payable_claws_it_back(
    session, client, coordinator, manager, accrued
):
    for stage in ("post_op", "follow_up", "completed"):
        move_to_stage(accrued, stage, coordinator.actor)
    session.commit()
    assert make_entries_payable() == 1
    refund(client, manager, accrued, PLAN_TOTAL // 10)
    assert [row[1:3] for row in ledger(session, accrued)] == [
        ("accrued", COMMISSION),
        ("payable", COMMISSION),
        ("reversed", -COMMISSION // 10),
    ]


def test_what_was_refunded_is_no_longer_made_payable(
    session, client, coordinator, manager, accrued
):
    refund(client, manager, accrued, PLAN_TOTAL // 4)
    move_to_stage(accrued, "post_op", coordinator.actor)
    session.commit()
    assert make_entries_payable(utcnow() + timedelta(days=400)) == 1
    payable = [row[2] for row in ledger(session, accrued) if row[1] == "payable"]
    assert payable == [COMMISSION - COMMISSION // 4]
