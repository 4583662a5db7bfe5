"""The duplicate check keeps the submit path short: as many statements for many patients
born the same day as for one (they are read in one indexed query, compared in Python)."""

from __future__ import annotations

from sqlalchemy import event

from crm.duplicates.models import DuplicateMatch
from tests.duplicates.support import person
from tests.helpers import API
from tests.referrals.support import count_rows

SAME_DAY = {"date_of_birth": "1958-12-12"}
# Born the same day, names nothing alike: each is read as a candidate, none is a match.
NAMES = iter(
    [
        ("Anna", "Schmidt"),
        ("Boris", "Kowalski"),
        ("Chen", "Wei"),
        ("Dilnoza", "Karimova"),
        ("Emeka", "Okafor"),
        ("Fatima", "Haddad"),
        ("Gustavo", "Pereira"),
        ("Hiroshi", "Tanaka"),
    ]
)


def _stranger() -> dict:
    given, family = next(NAMES)
    return person(given_name=given, family_name=family, **SAME_DAY)


def _submit(client, caller, payload) -> dict:
    response = client.post(f"{API}/referrals", json=payload, headers=caller.headers())
    assert response.status_code == 201, response.json
    return response.json


def _statements_of_a_submission(client, connection, caller) -> int:
    statements: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    event.listen(connection, "before_cursor_execute", record)
    try:
        _submit(client, caller, _stranger())
    finally:
        event.remove(connection, "before_cursor_execute", record)
    return len(statements)


def test_a_submission_reads_as_much_with_many_patients_born_the_same_day_as_with_one(
    client, connection, factory, session
):
    agency = factory.agency()
    _submit(client, agency, _stranger())
    with_one = _statements_of_a_submission(client, connection, agency)
    for _ in range(5):
        _submit(client, agency, _stranger())
    assert _statements_of_a_submission(client, connection, agency) == with_one
    assert count_rows(session, DuplicateMatch) == 0
