"""A new referral's patient is looked for among the patients already known."""

from __future__ import annotations

from sqlalchemy import select

from crm.duplicates.models import DuplicateMatch
from crm.referrals.models import Referral
from crm.tasks.models import Task
from tests.duplicates.support import person
from tests.helpers import API


def _submit(client, caller, payload) -> dict:
    response = client.post(f"{API}/referrals", json=payload, headers=caller.headers())
    assert response.status_code == 201, response.json
    return response.json


def _matches_of(session, referral_id: int) -> list[DuplicateMatch]:
    session.expire_all()
    return list(
        session.scalars(select(DuplicateMatch).where(DuplicateMatch.referral_id == referral_id))
    )


def test_the_same_phone_and_birth_date_link_the_patients_at_once(client, factory, session):
    first_agency, second_agency = factory.agency(), factory.agency()
    first = _submit(
        client, first_agency, person(phone="+4915199990001", date_of_birth="1975-03-04")
    )
    second = _submit(
        client,
        second_agency,
        person(
            phone="+49 151 99990001",
            date_of_birth="1975-03-04",
            given_name="Someone",
            family_name="Else",
        ),
    )
    [match] = _matches_of(session, second["id"])
    assert (match.kind, match.status) == ("exact", "linked")
    assert match.matched_patient_id == first["patient"]["id"]
    assert match.evidence["fields"] == ["phone", "date_of_birth"]


def test_the_same_email_in_another_case_and_the_same_name_link_the_patients(
    client, factory, session
):
    agency = factory.agency()
    _submit(
        client,
        agency,
        person(email="Ayse.Yilmaz@mail.example", given_name="Ayşe", family_name="Y\u0131lmaz"),
    )
    second = _submit(
        client,
        agency,
        person(email="ayse.yilmaz@mail.example", given_name="AYSE", family_name="YILMAZ"),
    )
    [match] = _matches_of(session, second["id"])
    assert match.status == "linked"
    assert set(match.evidence["fields"]) == {"email", "name"}
    assert match.evidence["name_score"] == 100


def test_a_similar_name_born_the_same_day_opens_a_coordinator_task_with_the_evidence(
    client, factory, session
):
    agency = factory.agency()
    _submit(
        client,
        agency,
        person(given_name="Mohammed", family_name="Al-Hashimi", date_of_birth="1969-11-30"),
    )
    second = _submit(
        client,
        agency,
        person(given_name="Mohamed", family_name="Al Hashimi", date_of_birth="1969-11-30"),
    )
    [match] = _matches_of(session, second["id"])
    assert (match.kind, match.status) == ("likely", "open")
    assert match.evidence["fields"] == ["date_of_birth"]
    assert match.evidence["name_score"] >= 90
    task = session.scalar(select(Task).where(Task.referral_id == second["id"]))
    assert task.title == "Possible duplicate patient: link, merge or dismiss"
    assert f"/api/v1/duplicates/{match.id}/link" in task.detail
    assert "date_of_birth" in task.detail


def test_the_same_phone_with_another_name_and_birth_date_is_only_likely(client, factory, session):
    agency = factory.agency()
    _submit(client, agency, person(phone="+4915199990002"))
    second = _submit(client, agency, person(phone="+4915199990002"))
    [match] = _matches_of(session, second["id"])
    assert (match.kind, match.status, match.evidence["fields"]) == ("likely", "open", ["phone"])


def test_a_similar_name_born_another_day_is_no_match(client, factory, session):
    agency = factory.agency()
    _submit(
        client, agency, person(given_name="Olga", family_name="Petrova", date_of_birth="1990-01-01")
    )
    second = _submit(
        client, agency, person(given_name="Olga", family_name="Petrova", date_of_birth="1990-01-02")
    )
    assert _matches_of(session, second["id"]) == []


def test_no_row_is_merged_when_patients_are_linked(client, factory, session):
    agency = factory.agency()
    first = _submit(client, agency, person(phone="+4915199990003", date_of_birth="1960-06-06"))
    second = _submit(client, agency, person(phone="+4915199990003", date_of_birth="1960-06-06"))
    session.expire_all()
    assert session.get(Referral, second["id"]).patient_id != first["patient"]["id"]
    assert session.get(Referral, first["id"]).patient_id == first["patient"]["id"]
