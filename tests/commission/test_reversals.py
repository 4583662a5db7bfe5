"""Cancellation and re-attribution reverse commission; the owning agency earns it; a
correction after a statement was issued lands in the next month."""

import pytest
from sqlalchemy import select

from crm.commission.ledger import cancel, reattribute
from crm.commission.models import CommissionEntry
from crm.commission.operations import next_month
from crm.duplicates.models import DuplicateMatch
from crm.referrals.operations import move_to_stage
from tests.commission.support import (
    PLAN_TOTAL,
    THIS_MONTH,
    accepted,
    add_contract,
    into_treatment,
    ledger,
    refund,
    treated,
)
from tests.helpers import API

pytestmark = pytest.mark.usefixtures("no_stay_guards")
COMMISSION = PLAN_TOTAL // 10
FIXED_USD = {"kind": "fixed", "amount_minor": 40_000, "currency": "USD"}


def test_a_cancellation_after_a_partial_refund_reverses_only_the_rest(
    session, client, factory, agency, coordinator, manager
):
    add_contract(client, manager, agency)
    referral = treated(client, factory, agency, coordinator)
    refund(client, manager, referral, PLAN_TOTAL // 10)
    move_to_stage(referral, "lost", coordinator.actor, reason="patient_withdrew")
    session.flush()
    assert [row[1:] for row in ledger(session, referral)] == [
        ("accrued", COMMISSION, "treatment"),
        ("reversed", -COMMISSION // 10, "refund"),
        ("reversed", -(COMMISSION - COMMISSION // 10), "cancelled"),
    ]


def test_a_replayed_cancellation_writes_nothing(
    session, client, factory, agency, coordinator, manager
):
    add_contract(client, manager, agency)
    referral = treated(client, factory, agency, coordinator)
    move_to_stage(referral, "lost", coordinator.actor, reason="patient_withdrew")
    assert cancel(referral) == []
    assert [row[1] for row in ledger(session, referral)] == ["accrued", "reversed"]


def test_the_owning_agency_earns_the_commission_not_the_one_that_sent_the_patient_again(
    session, client, factory, coordinator, manager
):
    owner, late = factory.agency(), factory.agency()
    add_contract(client, manager, owner)
    add_contract(client, manager, late)
    factory.referral(owner)  # the factory's patients share phone and birth date: one person
    referral = treated(client, factory, late, coordinator)
    assert referral.attributed_agency_id == owner.actor.agency_id
    assert [row[:2] for row in ledger(session, referral)] == [(owner.actor.agency_id, "accrued")]


# Re-attribution: a coordinator links a likely duplicate after treatment --------------------

SAME_DAY = "1983-08-09"


def _likely_pair(factory, first, second):
    """The first agency's patient, then the second's: a similar name born the same day, so
    the match stays open and the second referral is attributed to its own agency."""
    factory.referral(
        first,
        patient={"given_name": "Aleksandr", "family_name": "Ivanov", "date_of_birth": SAME_DAY}
        | {"phone": "+4915177001001", "email": "a.ivanov@patient.example"},
    )
    return factory.referral(
        second,
        patient={"given_name": "Alexandr", "family_name": "Ivanov", "date_of_birth": SAME_DAY}
        | {"phone": "+4915177001002", "email": "alex.ivanov@patient.example"},
    )


def _link(client, coordinator, session, referral):
    match = session.scalar(select(DuplicateMatch).where(DuplicateMatch.referral_id == referral.id))
    response = client.post(f"{API}/duplicates/{match.id}/link", headers=coordinator.headers())
    assert response.status_code == 200, response.json
    session.expire_all()
    return match


@pytest.fixture
def pair(client, factory, coordinator, manager):
    owner, late = factory.agency(), factory.agency()
    client.post(
        f"{API}/agencies/{owner.actor.agency_id}/contracts",
        json={**FIXED_USD, "effective_from": "2020-01-01"},
        headers=manager.headers(),
    )
    add_contract(client, manager, late)
    referral = _likely_pair(factory, owner, late)
    assert referral.attributed_agency_id == late.actor.agency_id
    return owner, late, referral


def test_linking_after_treatment_moves_the_commission_to_the_owner_under_its_contract(
    session, client, factory, coordinator, pair
):
    owner, late, referral = pair
    into_treatment(factory, accepted(client, factory, referral, late, coordinator), coordinator)
    _link(client, coordinator, session, referral)
    late_id, owner_id = late.actor.agency_id, owner.actor.agency_id
    assert ledger(session, referral) == [
        (late_id, "accrued", COMMISSION, "treatment"),
        (late_id, "reversed", -COMMISSION, "reattributed"),
        (owner_id, "accrued", 40_000, "reattributed"),
    ]


def test_linking_before_treatment_writes_nothing_and_treatment_accrues_for_the_owner(
    session, client, factory, coordinator, pair
):
    owner, late, referral = pair
    accepted(client, factory, referral, late, coordinator)
    _link(client, coordinator, session, referral)
    assert ledger(session, referral) == []
    into_treatment(factory, referral, coordinator)
    assert ledger(session, referral) == [(owner.actor.agency_id, "accrued", 40_000, "treatment")]


def test_a_replayed_reattribution_writes_nothing_twice(session, client, factory, coordinator, pair):
    owner, late, referral = pair
    into_treatment(factory, accepted(client, factory, referral, late, coordinator), coordinator)
    match = _link(client, coordinator, session, referral)
    referral = session.merge(referral)
    assert reattribute(referral, owner.actor.agency_id, f"match:{match.id}") == []
    assert len(ledger(session, referral)) == 3


def test_the_agency_that_lost_the_patient_sees_a_neutral_reversal_and_nothing_of_the_owner(
    session, client, factory, coordinator, pair
):
    owner, late, referral = pair
    into_treatment(factory, accepted(client, factory, referral, late, coordinator), coordinator)
    _link(client, coordinator, session, referral)
    response = client.get(f"{API}/statements/{THIS_MONTH}", headers=late.headers())
    assert [(line["kind"], line["reason"]) for line in response.json["lines"]] == [
        ("accrued", "treatment"),
        ("reversed", "reattributed"),
    ]
    assert response.json["totals"][0]["net_minor"] == 0
    text = response.get_data(as_text=True)
    assert owner.actor.label not in text
    assert "40000" not in text


# Corrections after a statement was issued ---------------------------------------------------


def test_a_refund_after_the_statement_was_issued_lands_in_the_next_month(
    session, client, factory, agency, coordinator, manager
):
    add_contract(client, manager, agency)
    referral = treated(client, factory, agency, coordinator)
    url = f"{API}/agencies/{agency.actor.agency_id}/statements/{THIS_MONTH}"
    issued = client.post(f"{url}/issue", headers=manager.headers()).json
    refund(client, manager, referral, PLAN_TOTAL)
    assert client.get(url, headers=manager.headers()).json == issued
    reversal = session.scalars(
        select(CommissionEntry).where(
            CommissionEntry.referral_id == referral.id, CommissionEntry.kind == "reversed"
        )
    ).one()
    assert reversal.period == next_month(THIS_MONTH)
    later = client.get(
        f"{API}/agencies/{agency.actor.agency_id}/statements/{next_month(THIS_MONTH)}",
        headers=manager.headers(),
    ).json
    assert [(t["currency"], t["net_minor"]) for t in later["totals"]] == [("EUR", -COMMISSION)]
