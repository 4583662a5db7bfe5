"""Retention, as the scheduler runs it: every person whose configured period after their
last completed (or, with none completed, lost) referral has passed is erased through the
same operation as an erasure on request. One commit per person; a legal hold skips them
(and the dry run says so), any other refusal is logged and the next person is tried."""

from __future__ import annotations

import logging

from flask import current_app

from crm.core.actors import Actor
from crm.core.db import utcnow
from crm.core.errors import DomainError
from crm.extensions import db
from crm.privacy import operations, queries

log = logging.getLogger(__name__)

RETENTION = Actor("system", None, "retention")


def apply_retention() -> int:
    """Erase everyone due now; returns how many people were erased."""
    settings = current_app.config["CRM"]
    due = queries.retention_schedule(settings, utcnow())
    db.session.commit()  # a read: hold no transaction between people
    erased = 0
    for item in due:
        if item.held:
            continue
        reason = f"retention: {item.basis} on {item.ended_at:%Y-%m-%d}, due {item.due_at:%Y-%m-%d}"
        try:
            operations.erase_person(item.patient_id, RETENTION, reason, source="retention")
        except DomainError as exc:
            db.session.rollback()
            log.warning(
                "retention skipped a patient",
                extra={"patient_id": item.patient_id, "why": exc.extensions.get("refusal")},
            )
            continue
        db.session.commit()
        erased += 1
    if erased:
        log.info("retention", extra={"erased": erased})
    return erased
