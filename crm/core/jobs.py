"""Housekeeping jobs of the core, run by the scheduler; each commits its own work."""

from __future__ import annotations

from crm.core.idempotency import purge_expired
from crm.extensions import db


def purge_idempotency_keys() -> int:
    """Drop the Idempotency-Key records past their time to live."""
    removed = purge_expired()
    db.session.commit()
    return removed
