"""The consent rule of a merge, per channel: the most restrictive wins. A withdrawal on
either row stands unless a grant valid for the survivor came strictly later."""

from __future__ import annotations

from datetime import UTC, datetime

from crm.merges.rules import ConsentFact, combine_consent
from crm.patients import consent_sources

JAN, FEB, MAR = (datetime(2026, month, 1, tzinfo=UTC) for month in (1, 2, 3))


def yes(when: datetime, origin: str) -> ConsentFact:
    return ConsentFact(True, when, "signed intake form", origin)


def no(when: datetime, origin: str) -> ConsentFact:
    return ConsentFact(False, when, "sms keyword (SM1)", origin)


def test_a_stop_on_the_merged_row_stays_over_an_earlier_grant_on_the_survivor():
    outcome = combine_consent("sms", yes(JAN, "survivor"), no(FEB, "merged"), True)
    assert outcome.reason == "withdrawn" and not outcome.granted
    assert outcome.result == no(FEB, "merged")


def test_a_stop_on_the_survivor_stays_over_an_earlier_grant_on_the_merged_row():
    outcome = combine_consent("sms", no(FEB, "survivor"), yes(JAN, "merged"), True)
    assert outcome.reason == "withdrawn" and not outcome.granted


def start(when: datetime, origin: str) -> ConsentFact:
    return ConsentFact(True, when, "sms keyword (SM2)", origin)


def test_the_patients_own_start_after_every_withdrawal_is_kept():
    outcome = combine_consent("sms", no(JAN, "survivor"), start(MAR, "merged"), True)
    assert outcome.reason == "granted_later" and outcome.granted
    assert outcome.result.recorded_at == MAR


def test_an_agencys_form_after_the_patients_own_stop_does_not_lift_it():
    """The patient texted STOP; a second agency sent them later with a signed form. Only
    the patient lifts their own no (a START reply)."""
    outcome = combine_consent("sms", no(JAN, "survivor"), yes(MAR, "merged"), True)
    assert outcome.reason == "withdrawn" and not outcome.granted
    assert outcome.result == no(JAN, "survivor")


def test_the_patient_turning_the_channel_on_on_their_page_lifts_their_own_stop():
    """The patient texted STOP on one row, then turned SMS on again on their private page
    (the other row's): that is the patient's own later grant, like a START reply."""
    page = ConsentFact(True, MAR, f"{consent_sources.PATIENT_PAGE} (merged from #7)", "merged")
    outcome = combine_consent("sms", no(JAN, "survivor"), page, True)
    assert outcome.reason == "granted_later" and outcome.granted
    assert outcome.result == page


def test_subscribing_again_by_the_link_lifts_the_patients_own_unsubscribe():
    unsubscribed = ConsentFact(False, JAN, consent_sources.UNSUBSCRIBE_LINK, "merged")
    again = ConsentFact(True, MAR, consent_sources.SUBSCRIBED_AGAIN, "survivor")
    outcome = combine_consent("email", again, unsubscribed, True)
    assert outcome.reason == "granted_later" and outcome.result == again


def test_an_agencys_form_after_the_patient_turned_a_channel_off_on_the_page_does_not_lift_it():
    off = ConsentFact(False, JAN, consent_sources.PATIENT_PAGE, "survivor")
    outcome = combine_consent("email", off, yes(MAR, "merged"), True)
    assert outcome.reason == "withdrawn" and outcome.result == off


def test_a_later_grant_lifts_a_withdrawal_someone_else_recorded():
    """A withdrawal an agency or the hospital recorded ("patient phoned") is not the
    patient's own reply: a valid grant after it is kept, as before."""
    recorded = ConsentFact(False, JAN, "patient phoned the agency", "survivor")
    outcome = combine_consent("email", recorded, yes(MAR, "merged"), True)
    assert outcome.reason == "granted_later" and outcome.granted


def test_a_grant_at_the_same_moment_as_a_withdrawal_loses():
    outcome = combine_consent("email", yes(FEB, "survivor"), no(FEB, "merged"), True)
    assert outcome.reason == "withdrawn"


def test_a_stop_for_another_number_still_withdraws_the_survivors_consent():
    outcome = combine_consent("sms", yes(JAN, "survivor"), no(FEB, "merged"), False)
    assert outcome.reason == "withdrawn"


def test_a_grant_for_another_address_is_not_carried_to_the_survivor():
    outcome = combine_consent("sms", None, yes(JAN, "merged"), False)
    assert outcome.reason == "other_address" and outcome.result is None


def test_a_later_grant_for_another_address_does_not_lift_the_survivors_stop():
    outcome = combine_consent("sms", no(JAN, "survivor"), yes(MAR, "merged"), False)
    assert outcome.reason == "withdrawn" and not outcome.granted


def test_a_grant_for_the_same_address_fills_a_missing_consent():
    outcome = combine_consent("whatsapp", None, yes(JAN, "merged"), True)
    assert outcome.reason == "granted" and outcome.result.origin == "merged"


def test_the_survivors_own_grant_is_kept_when_neither_row_withdrew():
    outcome = combine_consent("email", yes(JAN, "survivor"), yes(FEB, "merged"), True)
    assert outcome.reason == "granted" and outcome.result.origin == "survivor"


def test_no_consent_on_either_row_stays_no_consent():
    outcome = combine_consent("whatsapp", None, None, True)
    assert outcome.reason == "none" and outcome.result is None and not outcome.granted
