"""A submission costs a fixed, small number of SQL statements with the production rules
loaded (the thank-you SMS and email, the coordinator's notice, the spend caps), however
many rules exist: the rules, the catalogue and the templates come from the process's
caches, the caps from one counter upsert, and rules that only schedule are written in
one batch. The bound is what a submission costs today; raise it only with a reason."""

from __future__ import annotations

import itertools

import pytest
from sqlalchemy import event

from crm.messaging.models import OutboxMessage
from crm.nudges.models import NudgeRule
from tests.conftest import TEST_DATABASE_URL
from tests.duplicates.support import person
from tests.helpers import API

STATEMENTS_PER_SUBMIT = 19
# The counts are PostgreSQL's: its driver writes many rows of one table in one INSERT ...
# RETURNING; SQLite's writes them one by one (the rules test below holds on both).
counted_on_postgresql = pytest.mark.skipif(
    not TEST_DATABASE_URL,
    reason="statement counts are PostgreSQL's (multi-row INSERT ... RETURNING): "
    "set CRM_TEST_DATABASE_URL",
)
_codes = itertools.count(1)


def _statements_of_a_submit(client, connection, agency, *, idempotency_key=None) -> list[str]:
    statements: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        if not statement.lstrip().upper().startswith(("SAVEPOINT", "RELEASE")):
            statements.append(" ".join(statement.split()))

    headers = agency.headers()
    if idempotency_key:
        headers["Idempotency-Key"] = idempotency_key
    event.listen(connection, "before_cursor_execute", record)
    try:
        response = client.post(f"{API}/referrals", json=person(), headers=headers)
    finally:
        event.remove(connection, "before_cursor_execute", record)
    assert response.status_code == 201, response.json
    return statements


def _rule(session, **fields) -> None:
    values = {
        "code": f"extra_rule_{next(_codes)}",
        "trigger": "stage_entered",
        "stage": "enquiry",
        "audience": "patient",
        "channels": ["sms", "email"],
        "kind": "mri_reminder",
        **fields,
    }
    session.add(NudgeRule(**values))
    session.flush()


def _warm(client, agency) -> None:
    """One submission first: the process caches fill once, as in any running service."""
    client.post(f"{API}/referrals", json=person(), headers=agency.headers())


@pytest.fixture
def warmed(client, agency):
    _warm(client, agency)


@counted_on_postgresql
def test_a_submission_costs_a_fixed_small_number_of_statements(
    client, connection, agency, session, warmed, no_quiet_hours
):
    statements = _statements_of_a_submit(client, connection, agency)
    assert len(statements) <= STATEMENTS_PER_SUBMIT, "\n".join(statements)
    assert not [s for s in statements if s.startswith("SELECT nudge_rules")], statements
    assert not [s for s in statements if "FROM procedures" in s], statements
    assert not [s for s in statements if "FROM template_overrides" in s], statements
    assert not [s for s in statements if "count(" in s.lower()], statements
    written = session.query(OutboxMessage).filter(OutboxMessage.kind.like("enquiry%")).count()
    assert written >= 3  # the patient's SMS and email and the coordinator's email were written


def test_more_rules_cost_no_more_statements(
    client, connection, agency, session, warmed, no_quiet_hours
):
    before = len(_statements_of_a_submit(client, connection, agency))
    for stage in ("awaiting_mri", "mri_review", "plan_offered", "travel_booked", "follow_up"):
        for _ in range(4):
            _rule(session, stage=stage)
    for _ in range(4):
        _rule(session, stage="enquiry", active=False)
        _rule(session, trigger="date", stage=None, date_name="admission", offset_minutes=-60)
    session.commit()
    _warm(client, agency)  # the change emptied the caches; they fill once again
    after = len(_statements_of_a_submit(client, connection, agency))
    assert after == before


@counted_on_postgresql
def test_rules_that_only_schedule_are_written_in_one_batch(
    client, connection, agency, session, warmed, no_quiet_hours
):
    before = len(_statements_of_a_submit(client, connection, agency))
    for days in range(1, 11):
        _rule(session, offset_minutes=days * 24 * 60)
    session.commit()
    _warm(client, agency)
    after = _statements_of_a_submit(client, connection, agency)
    assert len(after) <= before + 1, "\n".join(after)


@counted_on_postgresql
def test_an_idempotent_submission_adds_only_the_key_claim_and_its_answer(
    client, connection, agency, warmed, no_quiet_hours
):
    plain = len(_statements_of_a_submit(client, connection, agency))
    keyed = _statements_of_a_submit(client, connection, agency, idempotency_key="stmt-count-1")
    assert len(keyed) <= plain + 2, "\n".join(keyed)  # the key (lock and row), its answer
