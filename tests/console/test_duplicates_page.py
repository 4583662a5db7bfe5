"""The console's Duplicates page: open matches oldest first with their evidence side by
side, link and dismiss through the duplicates operations, and the task closing itself."""

from __future__ import annotations

from sqlalchemy import select

from crm.core.audit import AuditEvent
from crm.duplicates.models import DuplicateMatch
from crm.tasks.models import Task
from tests.console.admin_support import signed_in
from tests.console.support import post, sign_in, staff_with_password
from tests.duplicates.support import person
from tests.helpers import API

PAGE = "/console/duplicates"


def _submit(client, caller, payload) -> dict:
    response = client.post(f"{API}/referrals", json=payload, headers=caller.headers())
    assert response.status_code == 201, response.json
    return response.json


def _likely_pair(client, first, second, family: str = "Ivanov", born: str = "1983-08-09"):
    """Two referrals of a similar name born the same day: one open match (the later one's)."""
    earlier = _submit(
        client, first, person(given_name="Aleksandr", family_name=family, date_of_birth=born)
    )
    later = _submit(
        client, second, person(given_name="Alexandr", family_name=family, date_of_birth=born)
    )
    return earlier, later


def _match(session, referral_id: int) -> DuplicateMatch:
    session.expire_all()
    return session.scalar(select(DuplicateMatch).where(DuplicateMatch.referral_id == referral_id))


def _task(session, match_id: int) -> Task:
    session.expire_all()
    return session.scalar(select(Task).where(Task.dedupe_key == f"duplicate:{match_id}"))


def _text(response) -> str:
    return response.get_data(as_text=True)


def _coordinator(client, session):
    user = staff_with_password(session, "coordinator")
    sign_in(client, user.email)
    return user


def test_the_page_shows_both_patients_side_by_side_with_the_evidence(client, session, factory):
    first, second = factory.agency("Anatolia Health"), factory.agency("Baltic Med")
    earlier, later = _likely_pair(client, first, second)
    _coordinator(client, session)
    page = _text(client.get(PAGE))
    assert "Aleksandr Ivanov" in page and "Alexandr Ivanov" in page
    assert "1983-08-09" in page
    assert "matched on <strong>date of birth</strong>" in page
    score = _match(session, later["id"]).evidence["name_score"]
    assert f"name similarity <strong>{score}/100</strong>" in page
    assert earlier["reference"] in page and later["reference"] in page
    assert "Anatolia Health" in page and "Baltic Med" in page
    assert "Merge…" in page


def test_phones_and_emails_are_masked_on_the_page(client, session, factory):
    _earlier, later = _likely_pair(client, factory.agency(), factory.agency())
    _coordinator(client, session)
    page = _text(client.get(PAGE))
    patient = _match(session, later["id"]).patient
    assert patient.phone not in page and patient.email not in page
    assert f"{patient.phone[:3]}*" in page
    assert f"{patient.email[0]}***@patient.example" in page


def test_open_matches_are_listed_oldest_first(client, session, factory):
    _, older = _likely_pair(client, factory.agency(), factory.agency(), "Petrov", "1970-01-02")
    _, newer = _likely_pair(client, factory.agency(), factory.agency(), "Sidorov", "1971-02-03")
    _coordinator(client, session)
    page = _text(client.get(PAGE))
    older_at = page.index(f'id="match-{_match(session, older["id"]).id}"')
    newer_at = page.index(f'id="match-{_match(session, newer["id"]).id}"')
    assert older_at < newer_at


def test_linking_from_the_page_links_the_match_and_closes_its_task(client, session, factory):
    _earlier, later = _likely_pair(client, factory.agency(), factory.agency())
    user = _coordinator(client, session)
    match = _match(session, later["id"])
    assert _task(session, match.id).status == "open"
    response = post(client, f"{PAGE}/{match.id}/link", {}, form_page=PAGE)
    assert response.status_code == 303
    assert "Linked: the same person" in _text(client.get(PAGE))
    match = _match(session, later["id"])
    assert (match.status, match.decided_by_id) == ("linked", user.id)
    assert _task(session, match.id).status == "done"
    assert f'id="match-{match.id}"' not in _text(client.get(PAGE))


def test_dismissing_from_the_page_dismisses_the_match_and_closes_its_task(client, session, factory):
    _earlier, later = _likely_pair(client, factory.agency(), factory.agency())
    _coordinator(client, session)
    match = _match(session, later["id"])
    post(client, f"{PAGE}/{match.id}/dismiss", {}, form_page=PAGE)
    assert _match(session, later["id"]).status == "dismissed"
    assert _task(session, match.id).status == "done"


def test_a_decision_through_the_api_closes_the_task_too(client, session, factory, coordinator):
    _earlier, later = _likely_pair(client, factory.agency(), factory.agency())
    match = _match(session, later["id"])
    response = client.post(f"{API}/duplicates/{match.id}/link", headers=coordinator.headers())
    assert response.status_code == 200, response.json
    assert _task(session, match.id).status == "done"


def test_a_match_decided_meanwhile_is_refused_in_words(client, session, factory, coordinator):
    _earlier, later = _likely_pair(client, factory.agency(), factory.agency())
    _coordinator(client, session)
    match = _match(session, later["id"])
    client.post(f"{API}/duplicates/{match.id}/dismiss", headers=coordinator.headers())
    post(client, f"{PAGE}/{match.id}/link", {}, form_page=PAGE)
    assert "this match is already dismissed" in _text(client.get(PAGE))
    assert _match(session, later["id"]).status == "dismissed"


def test_a_specialist_may_not_open_the_page(client, session):
    sign_in(client, staff_with_password(session, "specialist").email)
    assert client.get(PAGE).status_code == 403


def test_a_manager_may_decide(client, session, factory):
    _earlier, later = _likely_pair(client, factory.agency(), factory.agency())
    signed_in(client, session, "manager")
    match = _match(session, later["id"])
    post(client, f"{PAGE}/{match.id}/dismiss", {}, form_page=PAGE)
    assert _match(session, later["id"]).status == "dismissed"


def test_the_page_read_is_audited_with_the_matches_shown(client, session, factory):
    _earlier, later = _likely_pair(client, factory.agency(), factory.agency())
    _coordinator(client, session)
    client.get(PAGE)
    session.expire_all()
    [event] = session.scalars(select(AuditEvent).where(AuditEvent.action == "duplicate.list"))
    assert event.detail["match_ids"] == [_match(session, later["id"]).id]


def test_the_task_on_today_links_to_the_match_on_the_page(client, session, factory):
    _earlier, later = _likely_pair(client, factory.agency(), factory.agency())
    _coordinator(client, session)
    match = _match(session, later["id"])
    assert f'href="{PAGE}#match-{match.id}">compare and decide' in _text(
        client.get("/console/today")
    )


def test_the_referral_page_says_the_patient_may_be_a_duplicate(client, session, factory):
    _earlier, later = _likely_pair(client, factory.agency(), factory.agency())
    _coordinator(client, session)
    match = _match(session, later["id"])
    page = _text(client.get(f"/console/referrals/{later['id']}"))
    assert "This patient may be a duplicate of another" in page
    assert f"{PAGE}#match-{match.id}" in page
