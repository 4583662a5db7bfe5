"""Migration 0024 keeps the ledger written before it: each entry gets its cause and the
accrual it settles, each issued statement line its entry's cause."""

from __future__ import annotations

import pytest
from flask_migrate import upgrade
from sqlalchemy import text

from crm.extensions import db
from tests.test_migrations import (  # noqa: F401 (fixtures)
    MIGRATIONS,
    _procedure_as_at_0012,
    empty_database_url,
    scratch_app,
)


def _referral_as_at_0008(connection) -> int:
    _procedure_as_at_0012(connection)
    patient_id = connection.execute(
        text(
            "INSERT INTO patients (given_name, family_name, sex, country, phone, email,"
            " language, time_zone, created_at, updated_at) VALUES ('Ana', 'Lima', 'female',"
            " 'BR', '+5511912345678', 'ana@example.com', 'pt', 'America/Sao_Paulo',"
            " CURRENT_TIMESTAMP, CURRENT_TIMESTAMP) RETURNING id"
        )
    ).scalar_one()
    return connection.execute(
        text(
            "INSERT INTO referrals (patient_id, procedure_id, stage, stage_entered_at,"
            " complaints, treatments_tried, intake_notes, created_at, updated_at)"
            " SELECT :patient, id, 'enquiry', CURRENT_TIMESTAMP, '[]', '[]', '',"
            " CURRENT_TIMESTAMP, CURRENT_TIMESTAMP FROM procedures RETURNING id"
        ),
        {"patient": patient_id},
    ).scalar_one()


def _ledger_as_at_0022(connection, referral_id: int) -> None:
    agency_id = connection.execute(
        text(
            "INSERT INTO agencies (name, country, commission_basis_points, active, created_at)"
            " VALUES ('Old Agency', 'DE', 0, true, CURRENT_TIMESTAMP) RETURNING id"
        )
    ).scalar_one()
    contract_id = connection.execute(
        text(
            "INSERT INTO commission_contracts (agency_id, kind, amount_minor, currency,"
            " effective_from, created_by_label, created_at) VALUES (:agency, 'fixed', 500,"
            " 'EUR', '2020-01-01', 'm', CURRENT_TIMESTAMP) RETURNING id"
        ),
        {"agency": agency_id},
    ).scalar_one()
    for kind, amount in (("accrued", 500), ("payable", 500), ("reversed", -500)):
        connection.execute(
            text(
                "INSERT INTO commission_entries (agency_id, referral_id, contract_id, kind,"
                " amount_minor, currency, period, created_at) VALUES (:agency, :referral,"
                " :contract, :kind, :amount, 'EUR', '2026-01', CURRENT_TIMESTAMP)"
            ),
            {
                "agency": agency_id,
                "referral": referral_id,
                "contract": contract_id,
                "kind": kind,
                "amount": amount,
            },
        )
    statement_id = connection.execute(
        text(
            "INSERT INTO commission_statements (agency_id, month, issued_at, issued_by_label)"
            " VALUES (:agency, '2026-01', CURRENT_TIMESTAMP, 'm') RETURNING id"
        ),
        {"agency": agency_id},
    ).scalar_one()
    connection.execute(
        text(
            "INSERT INTO commission_statement_lines (statement_id, entry_id, referral_id, kind,"
            " amount_minor, currency, entry_created_at) SELECT :statement, id, referral_id,"
            " kind, amount_minor, currency, created_at FROM commission_entries"
        ),
        {"statement": statement_id},
    )


@pytest.mark.usefixtures("scratch_app")
def test_upgrading_gives_each_old_entry_its_cause_and_its_accrual():
    upgrade(directory=MIGRATIONS, revision="0008")
    with db.engine.begin() as connection:
        referral_id = _referral_as_at_0008(connection)
    upgrade(directory=MIGRATIONS, revision="0022")
    with db.engine.begin() as connection:
        _ledger_as_at_0022(connection, referral_id)
    upgrade(directory=MIGRATIONS)
    with db.engine.connect() as connection:
        entries = connection.execute(
            text("SELECT id, kind, accrual_id, cause FROM commission_entries ORDER BY id")
        ).all()
        lines = connection.execute(
            text("SELECT cause FROM commission_statement_lines ORDER BY id")
        ).scalars()
        lines = list(lines)
    accrual = entries[0].id
    assert [(e.kind, e.accrual_id, e.cause) for e in entries] == [
        ("accrued", None, f"treatment:{referral_id}"),
        ("payable", accrual, f"payable:{accrual}"),
        ("reversed", accrual, f"cancelled:{accrual}"),
    ]
    assert lines == [e.cause for e in entries]
