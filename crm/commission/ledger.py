"""Writing the ledger: accruals, payables and every reversal (refund, cancellation,
re-attribution). Only ever adds rows; each row's unique `cause` makes a replay a no-op.

Who earns: the agency that owns the patient under the attribution rule
(`Referral.attributed_agency_id`, crm/duplicates), which is the submitting agency unless
another agency sent the same patient first; a referral from before attribution existed
falls back to its own agency. A direct enquiry earns nobody anything.
"""

from __future__ import annotations

import logging
from datetime import date, datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from crm.commission.events import CommissionEntered
from crm.commission.models import CommissionEntry, Refund
from crm.commission.operations import agency_for_update, contract_in_force, open_period
from crm.core import events
from crm.core.db import utcnow
from crm.extensions import db
from crm.plans.models import TreatmentPlan
from crm.referrals.models import Referral, StageTransition
from crm.referrals.stages import Stage

log = logging.getLogger(__name__)


def earner_of(referral: Referral) -> int | None:
    """The owning agency (attribution), else the submitting one; None for a direct enquiry."""
    if referral.agency_id is None:
        return None
    return referral.attributed_agency_id or referral.agency_id


def entry_by_cause(cause: str) -> CommissionEntry | None:
    return db.session.scalar(select(CommissionEntry).where(CommissionEntry.cause == cause))


def accruals_of(referral_id: int) -> list[CommissionEntry]:
    return list(
        db.session.scalars(
            select(CommissionEntry)
            .where(CommissionEntry.referral_id == referral_id, CommissionEntry.kind == "accrued")
            .order_by(CommissionEntry.id)
        )
    )


def _reversed_sum(accrual: CommissionEntry, cause_prefix: str | None = None) -> int:
    query = select(func.coalesce(func.sum(CommissionEntry.amount_minor), 0)).where(
        CommissionEntry.accrual_id == accrual.id, CommissionEntry.kind == "reversed"
    )
    if cause_prefix is not None:
        query = query.where(CommissionEntry.cause.startswith(cause_prefix))
    return int(db.session.scalar(query) or 0)


def outstanding(accrual: CommissionEntry) -> int:
    """What the accrual still earns: its amount less every reversal of it so far."""
    return accrual.amount_minor + _reversed_sum(accrual)


def write(
    kind: str, amount: int, now: datetime, cause: str, **values: object
) -> CommissionEntry | None:
    """Adds one entry; one whose cause is already written is not written again (replay)."""
    agency_id = int(values["agency_id"])  # type: ignore[call-overload]
    agency_for_update(agency_id)  # serialises with issuing a statement
    if entry_by_cause(cause) is not None:
        return None
    entry = CommissionEntry(
        kind=kind,
        amount_minor=amount,
        period=open_period(agency_id, now),
        created_at=now,
        cause=cause,
        **values,
    )
    try:
        with db.session.begin_nested():
            db.session.add(entry)
    except IntegrityError:  # the same event, handled at the same moment elsewhere
        return None
    events.publish(CommissionEntered(entry))
    return entry


def _settle(accrual: CommissionEntry, kind: str, amount: int, now: datetime, cause: str):
    return write(
        kind,
        amount,
        now,
        cause,
        agency_id=accrual.agency_id,
        referral_id=accrual.referral_id,
        contract_id=accrual.contract_id,
        plan_id=accrual.plan_id,
        currency=accrual.currency,
        accrual_id=accrual.id,
    )


def reverse_rest(accrual: CommissionEntry, now: datetime, cause: str) -> CommissionEntry | None:
    """A negative entry for whatever the accrual still earns (nothing left: nothing)."""
    rest = outstanding(accrual)
    return _settle(accrual, "reversed", -rest, now, cause) if rest > 0 else None


# Accrual --------------------------------------------------------------------------------


def accepted_plan(referral_id: int) -> TreatmentPlan | None:
    return db.session.scalar(
        select(TreatmentPlan).where(
            TreatmentPlan.referral_id == referral_id, TreatmentPlan.status == "accepted"
        )
    )


def percentage_of(total_minor: int, basis_points: int) -> int:
    """Rounded half up to the minor unit, in integers only."""
    return (total_minor * basis_points + 5_000) // 10_000


def share_of(amount: int, part: int, whole: int) -> int:
    """amount * part / whole, rounded half up to the minor unit, in integers only."""
    return (2 * amount * part + whole) // (2 * whole)


def accrue_for(
    referral: Referral, agency_id: int, on: date, cause: str, now: datetime
) -> CommissionEntry | None:
    """The agency's commission under its contract in force on `on`, less refunds so far."""
    plan = accepted_plan(referral.id)
    code = plan.procedure_code if plan is not None else referral.procedure.code
    contract = contract_in_force(agency_id, code, on)
    if contract is None:
        log.info("no commission contract in force for referral %s", referral.id)
        return None
    if contract.kind == "percentage":
        if plan is None:
            log.warning("referral %s in treatment without an accepted plan", referral.id)
            return None
        amount = percentage_of(plan.total_minor, contract.basis_points or 0)
        currency = plan.currency
    else:
        amount, currency = contract.amount_minor or 0, contract.currency or ""
    entry = write(
        "accrued",
        amount,
        now,
        cause,
        agency_id=agency_id,
        referral_id=referral.id,
        contract_id=contract.id,
        plan_id=plan.id if plan is not None else None,
        currency=currency,
    )
    if entry is not None:
        apply_refunds(entry, now)
    return entry


def accrue(referral: Referral, now: datetime | None = None) -> CommissionEntry | None:
    """Treatment happened: the owning agency's commission under the contract in force."""
    now = now or utcnow()
    agency_id = earner_of(referral)
    if agency_id is None:
        return None
    return accrue_for(referral, agency_id, now.date(), f"treatment:{referral.id}", now)


def make_payable(accrued: CommissionEntry, now: datetime | None = None) -> CommissionEntry | None:
    """The follow-up window is over: what the accrual still earns becomes payable."""
    rest = outstanding(accrued)
    if rest <= 0:
        return None
    return _settle(accrued, "payable", rest, now or utcnow(), f"payable:{accrued.id}")


# Reversals ------------------------------------------------------------------------------


def refunds_of(referral_id: int) -> list[Refund]:
    return list(
        db.session.scalars(
            select(Refund).where(Refund.referral_id == referral_id).order_by(Refund.id)
        )
    )


def apply_refunds(accrual: CommissionEntry, now: datetime) -> list[CommissionEntry]:
    """Reverses the accrual in proportion to the refunds of its referral: after refunds
    totalling R of a plan of total T, the refunds have reversed round(A * R / T) of an
    accrual A in all (each refund writes the step from the last), so a full refund
    reverses exactly A and partial ones never drift by more than one minor unit."""
    written = []
    refunded = 0
    for refund in refunds_of(accrual.referral_id):
        refunded += refund.amount_minor
        plan = db.session.get(TreatmentPlan, refund.plan_id)
        whole = max(plan.total_minor if plan is not None else refunded, refunded)
        target = share_of(accrual.amount_minor, refunded, whole)
        step = min(target + _reversed_sum(accrual, "refund:"), outstanding(accrual))
        if step > 0:
            entry = _settle(accrual, "reversed", -step, now, f"refund:{refund.id}:{accrual.id}")
            if entry is not None:
                written.append(entry)
    return written


def cancel(referral: Referral, now: datetime | None = None) -> list[CommissionEntry]:
    """The referral was lost (cancelled) after accrual: each accrual's rest is reversed."""
    now = now or utcnow()
    written = [reverse_rest(a, now, f"cancelled:{a.id}") for a in accruals_of(referral.id)]
    return [entry for entry in written if entry is not None]


def treated_on(referral_id: int) -> date | None:
    """The day the referral first entered treatment, if it ever did."""
    moment = db.session.scalar(
        select(func.min(StageTransition.occurred_at)).where(
            StageTransition.referral_id == referral_id,
            StageTransition.to_stage == Stage.IN_TREATMENT,
        )
    )
    return moment.date() if moment is not None else None


def reattribute(
    referral: Referral, agency_id: int | None, key: str, now: datetime | None = None
) -> list[CommissionEntry]:
    """Another agency owns the patient now: what the old owner's accruals still earn is
    reversed and, when treatment already happened (and the referral is not lost), the new
    owner accrues under its contract in force on the day of treatment."""
    now = now or utcnow()
    written: list[CommissionEntry | None] = []
    keeps = False
    for accrual in accruals_of(referral.id):
        if accrual.agency_id == agency_id:
            keeps = keeps or outstanding(accrual) > 0
        else:
            written.append(reverse_rest(accrual, now, f"reattributed:{key}:{accrual.id}"))
    treated = treated_on(referral.id)
    if agency_id is not None and not keeps and treated and referral.stage != Stage.LOST:
        written.append(accrue_for(referral, agency_id, treated, f"reattributed:{key}:accrued", now))
    return [entry for entry in written if entry is not None]
