"""The merge itself: one row survives, everything of the other moves onto it, consent is
decided by the most restrictive rule, and the guards refuse what must not be merged."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from crm.core.audit import AuditEvent
from crm.core.db import utcnow
from crm.duplicates import queries
from crm.duplicates.events import DuplicateDecided, ReferralReattributed
from crm.duplicates.models import DuplicateMatch
from crm.merges import operations
from crm.merges.events import PatientsMerged
from crm.merges.plan import MergeRefused, preview
from crm.messaging.models import OutboxMessage
from crm.patients import links
from crm.patients.models import Patient, PatientConsent
from crm.patients.operations import set_consent
from crm.privacy.models import LegalHold, PatientErasure
from crm.privacy.operations import set_hold
from crm.tasks.models import Task
from tests.merges.support import likely_pair, patient

SHORT = re.compile(r"/s/([A-Za-z0-9]+)")


def _merge(session, pair, actor):
    result = operations.merge(queries.match_for(pair.match.id), actor)
    session.commit()
    session.expire_all()
    return result


def _refusal(pair, actor) -> str:
    with pytest.raises(MergeRefused) as refused:
        operations.merge(queries.match_for(pair.match.id), actor)
    return refused.value.extensions["refusal"]


def test_the_known_patient_survives_and_the_new_one_becomes_a_tombstone(
    session, factory, coordinator
):
    pair = likely_pair(factory, factory.agency(), factory.agency())
    survivor_id, merged_id = pair.known.patient_id, pair.new.patient_id
    _merge(session, pair, coordinator.actor)
    merged = session.get(Patient, merged_id)
    assert merged.merged_into_id == survivor_id and merged.merged_at is not None
    assert merged.survivor_id == survivor_id
    assert pair.new.patient_id == survivor_id  # the same referral id, now the survivor's
    survivor = session.get(Patient, survivor_id)
    assert survivor.family_name.lower() in pair.new.search_text  # found by the survivor's name
    assert session.get(DuplicateMatch, pair.match.id).status == "merged"


def test_a_stop_on_the_merged_row_withdraws_the_survivors_sms(session, factory, coordinator):
    pair = likely_pair(factory, factory.agency(), factory.agency())
    merged = pair.new.patient
    set_consent(merged, "sms", False, "sms keyword (SMstop)")
    session.commit()
    _merge(session, pair, coordinator.actor)
    survivor = session.get(Patient, pair.known.patient_id)
    assert not survivor.may_contact("sms")
    assert survivor.consent_for("sms").source.startswith("sms keyword (SMstop)")
    assert survivor.may_contact("email")  # its own email consent, no withdrawal anywhere
    left = session.scalars(select(PatientConsent).where(PatientConsent.patient_id == merged.id))
    assert list(left) == []


def test_a_grant_recorded_after_the_survivors_stop_is_kept(session, factory, coordinator):
    pair = likely_pair(factory, factory.agency(), factory.agency())
    stop = pair.known.patient.consent_for("sms")
    stop.granted, stop.recorded_at = False, utcnow() - timedelta(days=30)
    session.commit()
    _merge(session, pair, coordinator.actor)
    survivor = session.get(Patient, pair.known.patient_id)
    assert survivor.may_contact("sms")  # the new intake's consent came after the STOP


def test_sms_turned_on_again_on_the_patients_page_lifts_their_stop_on_the_other_row(
    session, factory, coordinator
):
    """The patient texted STOP (the known row); a second agency's form came later (the new
    row), which alone would not lift it; then the patient turned SMS on on the new
    referral's private page: their own later grant, so the survivor may write again."""
    from crm.core.actors import Actor
    from crm.patients import consent_sources
    from crm.patients.operations import set_own_consent

    pair = likely_pair(factory, factory.agency(), factory.agency())
    stop = pair.known.patient.consent_for("sms")
    stop.granted, stop.source = False, consent_sources.keyword("sms", "SMstop")
    stop.recorded_at = utcnow() - timedelta(days=30)
    merged = pair.new.patient
    set_consent(merged, "sms", False, "agency:made up")  # then the page turns it on
    actor = Actor("patient", merged.id, f"patient {merged.id} (link)")
    assert set_own_consent(merged, "sms", True, consent_sources.PATIENT_PAGE, actor, pair.new.id)
    session.commit()
    _merge(session, pair, coordinator.actor)
    survivor = session.get(Patient, pair.known.patient_id)
    assert survivor.may_contact("sms")
    assert survivor.consent_for("sms").source.startswith(consent_sources.PATIENT_PAGE)


def test_without_the_page_an_agencys_later_form_leaves_the_stop_standing(
    session, factory, coordinator
):
    pair = likely_pair(factory, factory.agency(), factory.agency())
    stop = pair.known.patient.consent_for("sms")
    stop.granted, stop.source = False, "sms keyword (SMstop)"
    stop.recorded_at = utcnow() - timedelta(days=30)
    session.commit()
    _merge(session, pair, coordinator.actor)
    assert not session.get(Patient, pair.known.patient_id).may_contact("sms")


def test_a_grant_for_another_email_is_not_carried_over(session, factory, coordinator):
    phone_only = {"email": None, "consents": {"sms": True, "source": "call"}}
    pair = likely_pair(factory, factory.agency(), factory.agency(), known=phone_only)
    pair.known.patient.email = "known@patient.example"  # the survivor's own address
    session.commit()
    _merge(session, pair, coordinator.actor)
    survivor = session.get(Patient, pair.known.patient_id)
    assert survivor.consent_for("email") is None
    assert not survivor.may_contact("email")


def test_missing_contact_fields_are_filled_in_and_conflicts_are_named(
    session, factory, coordinator
):
    pair = likely_pair(factory, factory.agency(), factory.agency(), known={"email": None})
    merged_email = pair.new.patient.email
    result = _merge(session, pair, coordinator.actor)
    survivor = session.get(Patient, pair.known.patient_id)
    assert survivor.email == merged_email  # filled in
    assert survivor.may_contact("email")  # the merged row's grant, for this very address
    assert "email" in result.filled
    assert {"given_name", "family_name", "date_of_birth"} <= set(result.conflicts)
    [event] = session.scalars(
        select(AuditEvent).where(
            AuditEvent.action == "patient.merge", AuditEvent.referral_id == pair.new.id
        )
    )
    assert event.detail["conflicts"] == result.conflicts
    assert event.detail["filled"] == ["email"]
    assert merged_email not in str(event.detail)  # field names, no contact data
    tombstone = session.get(Patient, pair.new.patient_id)
    assert tombstone.given_name == pair.new.patient.given_name  # the other value stays


def test_outbox_rows_move_and_a_queued_one_to_a_dropped_address_is_cancelled(
    session, factory, coordinator
):
    pair = likely_pair(factory, factory.agency(), factory.agency())
    rows = session.scalars(select(OutboxMessage).where(OutboxMessage.referral_id == pair.new.id))
    before = {m.id: (m.channel, m.status) for m in rows if m.audience == "patient"}
    assert {("sms", "queued"), ("email", "queued")} <= set(before.values())
    _merge(session, pair, coordinator.actor)
    for message_id, (channel, status) in before.items():
        message = session.get(OutboxMessage, message_id)
        assert message.patient_id == pair.known.patient_id
        if channel == "email" and status == "queued":  # to the merged row's own email
            assert message.status == "cancelled"
            assert message.suppressed_reason == operations.CANCEL_REASON
        if channel == "sms" and status == "queued":  # the same phone: still owed
            assert message.status == "queued"


def test_the_private_link_and_the_short_link_still_open_the_referral(
    client, session, factory, coordinator
):
    pair = likely_pair(factory, factory.agency(), factory.agency())
    token = links.token_for(links.link_for(pair.new.id))
    sms = session.scalar(
        select(OutboxMessage).where(
            OutboxMessage.referral_id == pair.new.id, OutboxMessage.channel == "sms"
        )
    )
    code = SHORT.search(sms.body_text).group(1)
    session.commit()
    _merge(session, pair, coordinator.actor)
    assert client.get(f"/p/{token}").status_code == 200
    short = client.get(f"/s/{code}")
    assert short.status_code == 303 and short.headers["Location"].endswith(f"/p/{token}")


def test_the_task_closes_and_the_events_are_published(session, factory, coordinator, features):
    seen = []
    for event_type in (PatientsMerged, DuplicateDecided, ReferralReattributed):
        features.wiring.events.subscribe(event_type, seen.append)
    first, second = factory.agency(), factory.agency()
    pair = likely_pair(factory, first, second)
    assert pair.new.attributed_agency_id == second.actor.agency_id
    _merge(session, pair, coordinator.actor)
    kinds = [type(event).__name__ for event in seen]
    assert kinds[:2] == ["PatientsMerged", "DuplicateDecided"]
    [reattributed] = [e for e in seen if isinstance(e, ReferralReattributed)]
    assert reattributed.agency_id == first.actor.agency_id
    assert session.get(type(pair.new), pair.new.id).attributed_agency_id == first.actor.agency_id
    task = session.scalar(select(Task).where(Task.dedupe_key == f"duplicate:{pair.match.id}"))
    assert task.status == "done"


def test_a_new_referral_of_the_person_matches_the_survivor_not_the_tombstone(
    session, factory, coordinator
):
    pair = likely_pair(factory, factory.agency(), factory.agency())
    _merge(session, pair, coordinator.actor)
    again = factory.referral(factory.agency(), patient=patient(phone=pair.known.patient.phone))
    matched = session.scalars(
        select(DuplicateMatch.matched_patient_id).where(DuplicateMatch.referral_id == again.id)
    )
    assert set(matched) == {pair.known.patient_id}


def test_a_decided_match_is_refused(session, factory, coordinator):
    pair = likely_pair(factory, factory.agency(), factory.agency())
    _merge(session, pair, coordinator.actor)
    assert _refusal(pair, coordinator.actor) == "decided"


def test_a_patient_merged_already_is_refused(session, factory, coordinator):
    agencies = factory.agency(), factory.agency()
    pair = likely_pair(factory, *agencies)
    other = likely_pair(factory, *agencies)
    tombstone_id = pair.new.patient_id
    _merge(session, pair, coordinator.actor)
    other.match.matched_patient_id = tombstone_id  # a match left on the tombstone
    session.commit()
    assert _refusal(other, coordinator.actor) == "already_merged"


def test_the_merged_patients_other_matches_move_to_the_survivor(session, factory, coordinator):
    agencies = factory.agency(), factory.agency()
    pair = likely_pair(factory, *agencies)
    other = likely_pair(factory, *agencies)
    other.match.matched_patient_id = pair.new.patient_id  # the new patient was known too
    session.commit()
    _merge(session, pair, coordinator.actor)
    moved = session.get(DuplicateMatch, other.match.id)
    assert moved.matched_patient_id == pair.known.patient_id and moved.status == "open"


def test_an_erased_patient_is_refused(session, factory, coordinator):
    pair = likely_pair(factory, factory.agency(), factory.agency())
    session.add(
        PatientErasure(
            patient_id=pair.known.patient_id, source="request", reason="r", erased_by_label="x"
        )
    )
    session.commit()
    assert _refusal(pair, coordinator.actor) == "erased"


def test_a_hold_on_one_patient_only_is_refused(session, factory, coordinator):
    manager = factory.staff("manager")
    pair = likely_pair(factory, factory.agency(), factory.agency())
    set_hold(pair.new.patient_id, manager.actor, "a claim")
    session.commit()
    assert _refusal(pair, coordinator.actor) == "legal_hold"
    assert preview(pair.match).refusal.extensions["refusal"] == "legal_hold"


def test_holds_on_both_patients_move_to_the_survivor(session, factory, coordinator):
    manager = factory.staff("manager")
    pair = likely_pair(factory, factory.agency(), factory.agency())
    set_hold(pair.new.patient_id, manager.actor, "a claim")
    set_hold(pair.known.patient_id, manager.actor, "another claim")
    session.commit()
    _merge(session, pair, coordinator.actor)
    held = session.scalars(select(LegalHold.patient_id).where(LegalHold.lifted_at.is_(None)))
    assert set(held) == {pair.known.patient_id}


def test_a_hold_on_a_row_linked_to_one_patient_counts_as_a_hold_on_it(
    session, factory, coordinator
):
    pair = likely_pair(factory, factory.agency(), factory.agency())
    linked = factory.referral(factory.agency(), patient=patient())
    session.add(
        DuplicateMatch(
            referral_id=linked.id,
            patient_id=linked.patient_id,
            matched_patient_id=pair.known.patient_id,
            kind="exact",
            status="linked",
            evidence={},
        )
    )
    set_hold(linked.patient_id, factory.staff("manager").actor, "a claim")
    session.commit()
    assert _refusal(pair, coordinator.actor) == "legal_hold"


def test_merging_a_survivor_later_points_its_tombstones_at_the_new_survivor(
    session, factory, coordinator
):
    phone = "+4915189990001"
    first, second, third = (
        factory.referral(factory.agency(), patient=patient(phone=phone)) for _ in range(3)
    )
    ids = first.patient_id, second.patient_id, third.patient_id

    def match(new: int, known: int) -> DuplicateMatch:
        return session.scalar(
            select(DuplicateMatch).where(
                DuplicateMatch.patient_id == new, DuplicateMatch.matched_patient_id == known
            )
        )

    operations.merge(match(ids[2], ids[1]), coordinator.actor)  # third into second
    operations.merge(match(ids[1], ids[0]), coordinator.actor)  # second into first
    session.commit()
    session.expire_all()
    assert session.get(Patient, ids[1]).merged_into_id == ids[0]
    assert session.get(Patient, ids[2]).merged_into_id == ids[0]  # no chain
    assert {first.patient_id, second.patient_id, third.patient_id} == {ids[0]}
