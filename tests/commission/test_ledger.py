from datetime import timedelta

import pytest

from crm.commission.jobs import make_entries_payable
from crm.commission.ledger import accrue
from crm.commission.operations import LedgerImmutable
from crm.core.db import utcnow
from crm.referrals.operations import move_to_stage
from tests.commission.support import PLAN_TOTAL, add_contract, entries_of, treated
from tests.reports.support import accepted_case

pytestmark = pytest.mark.usefixtures("no_stay_guards")


def _kinds(session, referral):
    return [(e.kind, e.amount_minor, e.currency) for e in entries_of(session, referral)]


def test_a_percentage_contract_accrues_its_share_of_the_plan_at_in_treatment(
    session, client, factory, agency, coordinator, manager
):
    add_contract(client, manager, agency, basis_points=1000)
    referral = treated(client, factory, agency, coordinator)
    assert _kinds(session, referral) == [("accrued", PLAN_TOTAL // 10, "EUR")]


def test_nothing_accrues_before_treatment(session, client, factory, agency, coordinator, manager):
    add_contract(client, manager, agency)
    referral = accepted_case(client, factory, agency, coordinator)
    assert entries_of(session, referral) == []


def test_a_fixed_contract_accrues_its_amount_in_its_own_currency(
    session, client, factory, agency, coordinator, manager
):
    client.post(
        f"/api/v1/agencies/{agency.actor.agency_id}/contracts",
        json={
            "kind": "fixed",
            "amount_minor": 40_000,
            "currency": "USD",
            "procedure_code": "microdiscectomy",
            "effective_from": "2020-01-01",
        },
        headers=manager.headers(),
    )
    referral = treated(client, factory, agency, coordinator)
    assert _kinds(session, referral) == [("accrued", 40_000, "USD")]


def test_a_replayed_event_never_accrues_twice(
    session, client, factory, agency, coordinator, manager
):
    add_contract(client, manager, agency)
    referral = treated(client, factory, agency, coordinator)
    assert accrue(referral) is None
    assert len(entries_of(session, referral)) == 1


def test_losing_the_referral_after_accrual_adds_a_negative_entry(
    session, client, factory, agency, coordinator, manager
):
    add_contract(client, manager, agency)
    referral = treated(client, factory, agency, coordinator)
    move_to_stage(referral, "lost", coordinator.actor, reason="patient_withdrew")
    session.flush()
    amount = PLAN_TOTAL // 10
    assert _kinds(session, referral) == [("accrued", amount, "EUR"), ("reversed", -amount, "EUR")]


def test_the_payable_job_waits_for_the_window_after_discharge(
    session, client, factory, agency, coordinator, manager, app
):
    add_contract(client, manager, agency)
    referral = treated(client, factory, agency, coordinator)
    move_to_stage(referral, "post_op", coordinator.actor)  # discharged
    session.commit()
    days = app.config["CRM"]["COMMISSION_PAYABLE_AFTER_DAYS"]
    assert make_entries_payable(utcnow() + timedelta(days=days - 1)) == 0
    assert make_entries_payable(utcnow() + timedelta(days=days, minutes=1)) == 1
    assert make_entries_payable(utcnow() + timedelta(days=days + 5)) == 0  # once only
    assert [e.kind for e in entries_of(session, referral)] == ["accrued", "payable"]


def test_a_reversed_accrual_never_becomes_payable(
    session, client, factory, agency, coordinator, manager
):
    add_contract(client, manager, agency)
    referral = treated(client, factory, agency, coordinator)
    move_to_stage(referral, "lost", coordinator.actor, reason="patient_withdrew")
    session.commit()
    assert make_entries_payable(utcnow() + timedelta(days=400)) == 0


def test_a_ledger_entry_cannot_be_changed(session, client, factory, agency, coordinator, manager):
    add_contract(client, manager, agency)
    (entry,) = entries_of(session, treated(client, factory, agency, coordinator))
    entry.amount_minor = 1
    with pytest.raises(LedgerImmutable):
        session.flush()


def test_a_ledger_entry_cannot_be_deleted(session, client, factory, agency, coordinator, manager):
    add_contract(client, manager, agency)
    (entry,) = entries_of(session, treated(client, factory, agency, coordinator))
    session.delete(entry)
    with pytest.raises(LedgerImmutable):
        session.flush()


def test_a_completed_referral_is_payable_without_waiting(
    session, client, factory, agency, coordinator, manager
):
    add_contract(client, manager, agency)
    referral = treated(client, factory, agency, coordinator)
    for stage in ("post_op", "follow_up", "completed"):
        move_to_stage(referral, stage, coordinator.actor)
    session.commit()
    assert make_entries_payable() == 1
    assert [e.kind for e in entries_of(session, referral)] == ["accrued", "payable"]


def test_the_procedures_own_contract_wins_over_the_general_one(
    session, client, factory, agency, coordinator, manager
):
    add_contract(client, manager, agency)
    client.post(
        f"/api/v1/agencies/{agency.actor.agency_id}/contracts",
        json={"kind": "percentage", "basis_points": 500, "procedure_code": "microdiscectomy"}
        | {"effective_from": "2020-01-01"},
        headers=manager.headers(),
    )
    referral = treated(client, factory, agency, coordinator)
    assert _kinds(session, referral) == [("accrued", PLAN_TOTAL // 20, "EUR")]
