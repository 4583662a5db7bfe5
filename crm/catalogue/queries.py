from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select

from crm.catalogue.models import Procedure
from crm.core.cache import attach, columns_of, process_cache, watch
from crm.core.errors import NotFound
from crm.extensions import db

watch(Procedure.__tablename__)


def active_procedures() -> Sequence[Procedure]:
    return db.session.scalars(
        select(Procedure).where(Procedure.active.is_(True)).order_by(Procedure.name)
    ).all()


def procedure_by_code(code: str) -> Procedure:
    """An active procedure, from the process's cache of the catalogue (crm/core/cache.py)."""
    values = process_cache("procedures").get(("active", code), lambda: _active_row(code))
    if values is None:
        raise NotFound(f"no procedure with code {code!r} in the catalogue")
    return attach(Procedure, values)


def _active_row(code: str) -> dict | None:
    procedure = db.session.scalar(
        select(Procedure).where(Procedure.code == code, Procedure.active.is_(True))
    )
    return columns_of(procedure) if procedure is not None else None


def procedure_named(code: str) -> Procedure:
    """The row a plan or referral names, even if it has since left the catalogue."""
    procedure = db.session.scalar(select(Procedure).where(Procedure.code == code))
    if procedure is None:
        raise NotFound(f"no procedure with code {code!r} in the catalogue")
    return procedure
