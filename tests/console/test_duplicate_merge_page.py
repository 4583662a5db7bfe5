"""Merging from the console: a confirmation page says what will happen (which record
stays, the consent outcome per channel, the contact fields), then one button merges."""

from __future__ import annotations

import re

from sqlalchemy import select

from crm.core.audit import AuditEvent
from crm.duplicates.models import DuplicateMatch
from crm.patients.models import Patient
from crm.patients.operations import set_consent
from crm.privacy.operations import set_hold
from crm.tasks.models import Task
from tests.console.support import post, sign_in, staff_with_password
from tests.merges.support import likely_pair

PAGE = "/console/duplicates"


def _coordinator(client, session):
    user = staff_with_password(session, "coordinator")
    sign_in(client, user.email)
    return user


def _text(response) -> str:
    return response.get_data(as_text=True)


def _row(page: str, channel: str) -> str:
    return re.search(rf'<tr id="consent-{channel}">(.*?)</tr>', page, re.S).group(1)


def test_the_confirmation_says_who_stays_and_the_consent_outcome(client, session, factory):
    pair = likely_pair(factory, factory.agency("Anatolia Health"), factory.agency())
    set_consent(pair.new.patient, "sms", False, "sms keyword (SMx)")
    session.commit()
    _coordinator(client, session)
    assert f"{PAGE}/{pair.match.id}/merge" in _text(client.get(PAGE))
    page = _text(client.get(f"{PAGE}/{pair.match.id}/merge"))
    survivor = pair.known.patient
    assert f"Patient #{survivor.id} ({survivor.full_name}) stays" in page
    assert pair.new.reference in page and "Anatolia Health" in page
    sms = _row(page, "sms")
    assert "<td>yes</td>" in sms and "<td>withdrawn</td>" in sms
    assert 'class="tag tag-bad">withdrawn</strong>' in sms
    assert "withdrawn on a row" in sms
    assert survivor.phone not in page  # masked, as on the list
    assert f"Merge #{pair.new.patient_id} into #{survivor.id}" in page
    session.expire_all()
    assert session.get(DuplicateMatch, pair.match.id).status == "open"  # a look changes nothing


def test_merging_from_the_page_merges_and_closes_the_task(client, session, factory):
    pair = likely_pair(factory, factory.agency(), factory.agency())
    merged_id, match_id = pair.new.patient_id, pair.match.id
    user = _coordinator(client, session)
    response = post(client, f"{PAGE}/{match_id}/merge", {}, form_page=f"{PAGE}/{match_id}/merge")
    assert response.status_code == 303
    assert "Merged: one patient record now" in _text(client.get(PAGE))
    session.expire_all()
    match = session.get(DuplicateMatch, match_id)
    assert (match.status, match.decided_by_id) == ("merged", user.id)
    assert session.get(Patient, merged_id).merged_into_id == pair.known.patient_id
    task = session.scalar(select(Task).where(Task.dedupe_key == f"duplicate:{match_id}"))
    assert task.status == "done"
    actions = set(session.scalars(select(AuditEvent.action)))
    assert {"duplicate.merge_preview", "patient.merge"} <= actions


def test_a_refused_merge_says_why_and_offers_no_button(client, session, factory):
    pair = likely_pair(factory, factory.agency(), factory.agency())
    set_hold(pair.new.patient_id, factory.staff("manager").actor, "a claim")
    session.commit()
    _coordinator(client, session)
    url = f"{PAGE}/{pair.match.id}/merge"
    page = _text(client.get(url))
    assert "Not possible now" in page and "legal hold" in page
    assert "danger-big" not in page
    post(client, url, {}, form_page=f"{PAGE}")
    assert "a legal hold is in force" in _text(client.get(url))
    session.expire_all()
    assert session.get(DuplicateMatch, pair.match.id).status == "open"


def test_a_specialist_may_not_merge(client, session, factory):
    pair = likely_pair(factory, factory.agency(), factory.agency())
    sign_in(client, staff_with_password(session, "specialist").email)
    assert client.get(f"{PAGE}/{pair.match.id}/merge").status_code == 403
