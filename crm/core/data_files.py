"""Loading rows kept as data files (the catalogue, the nudge rules) into their tables."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import select

from crm.extensions import db


def upsert_by_code(model: Any, rows: Iterable[dict[str, Any]]) -> tuple[int, int]:
    """Insert new rows and update existing ones matched by `code`; (created, updated)."""
    created = updated = 0
    for row in rows:
        existing = db.session.scalar(select(model).where(model.code == row["code"]))
        if existing is None:
            db.session.add(model(**row))
            created += 1
        else:
            for name, value in row.items():
                setattr(existing, name, value)
            updated += 1
    db.session.flush()
    return created, updated
