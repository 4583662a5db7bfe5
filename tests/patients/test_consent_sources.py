"""Which consent sources are the patient's own (crm/patients/consent_sources.py), and the
operation that records a patient's own choice."""

from __future__ import annotations

import pytest

from crm.core.actors import Actor
from crm.patients import consent_sources
from crm.patients.operations import set_own_consent


@pytest.mark.parametrize(
    "source",
    [
        consent_sources.keyword("sms", "SM1"),
        consent_sources.keyword("whatsapp", "SM2"),
        consent_sources.UNSUBSCRIBE_LINK,
        consent_sources.SUBSCRIBED_AGAIN,
        consent_sources.CARRIER_OPT_OUT,
        consent_sources.PATIENT_PAGE,
        f"{consent_sources.PATIENT_PAGE} (merged from #12)",
    ],
)
def test_every_source_this_code_writes_for_the_patient_is_theirs(source):
    assert consent_sources.by_the_patient(source)


@pytest.mark.parametrize(
    "source",
    [
        "Patient-Page",
        "  PATIENT   page: scanned",
        "patient_page",
        "Subscribed again!",
        "SMS-keyword",
    ],
)
def test_the_same_words_cased_spaced_or_punctuated_otherwise_count_too(source):
    """So a caller cannot slip a look-alike past the check on `consents.source`."""
    assert consent_sources.by_the_patient(source)


@pytest.mark.parametrize(
    "source",
    [None, "", "signed intake form", "the patient asked by phone", "FHIR Consent", "agency:X"],
)
def test_what_others_record_for_the_patient_is_not_theirs(source):
    assert not consent_sources.by_the_patient(source)


def test_a_choice_of_the_patients_own_needs_one_of_their_sources(factory):
    referral = factory.referral(factory.agency())
    actor = Actor("patient", referral.patient_id, "patient")
    with pytest.raises(ValueError, match="not a source of the patient's own"):
        set_own_consent(referral.patient, "sms", True, "signed intake form", actor)
