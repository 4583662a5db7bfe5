from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select

from crm.catalogue.models import Procedure
from crm.core.errors import NotFound
from crm.extensions import db


def active_procedures() -> Sequence[Procedure]:
    return db.session.scalars(
        select(Procedure).where(Procedure.active.is_(True)).order_by(Procedure.name)
    ).all()


def procedure_by_code(code: str) -> Procedure:
    procedure = db.session.scalar(
        select(Procedure).where(Procedure.code == code, Procedure.active.is_(True))
    )
    if procedure is None:
        raise NotFound(f"no procedure with code {code!r} in the catalogue")
    return procedure


def procedure_named(code: str) -> Procedure:
    """The row a plan or referral names, even if it has since left the catalogue."""
    procedure = db.session.scalar(select(Procedure).where(Procedure.code == code))
    if procedure is None:
        raise NotFound(f"no procedure with code {code!r} in the catalogue")
    return procedure
