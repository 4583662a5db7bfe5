"""Staff search: the hospital reference, the agency reference, names without accents or
case, email, and phones in any formatting."""

from __future__ import annotations

from tests.helpers import API
from tests.referrals.support import ids_of, list_referrals, move


def _patient(**fields):
    return {"patient": fields}


def _search(client, staff, agency, text, **query):
    return ids_of(list_referrals(client, staff, q=text, agency_id=agency.actor.agency_id, **query))


def test_a_referral_shows_the_hospital_reference_patients_are_told(client, factory):
    agency = factory.agency()
    referral = factory.referral(agency)
    response = client.get(f"{API}/referrals/{referral.id}", headers=agency.headers())
    assert response.json["reference"] == f"R-{referral.id:06d}"
    listed = list_referrals(client, agency).json["items"][0]
    assert listed["reference"] == f"R-{referral.id:06d}"


def test_search_finds_a_referral_by_its_hospital_reference_however_it_is_written(client, factory):
    agency, coordinator = factory.agency(), factory.staff()
    target = factory.referral(agency)
    factory.referral(agency)
    n = target.id
    for text in (f"R-{n:06d}", f"r-{n}", f"R{n}", f"{n:06d}"):
        assert _search(client, coordinator, agency, text) == [target.id], text


def test_an_r_number_finds_that_referral_only_not_codes_that_contain_it(client, factory):
    agency, coordinator = factory.agency(), factory.staff()
    target = factory.referral(agency)
    other = factory.referral(agency, agency_reference=f"ABR{target.id}-X")
    assert _search(client, coordinator, agency, f"R{target.id}") == [target.id]
    assert _search(client, coordinator, agency, f"abr{target.id}") == [other.id]


def test_search_finds_a_name_whatever_its_accents_and_case(client, factory):
    agency, coordinator = factory.agency(), factory.staff()
    muller = factory.referral(agency, **_patient(given_name="José", family_name="Müller"))
    plain = factory.referral(agency, **_patient(given_name="Jose", family_name="Muller"))
    factory.referral(agency)
    both = sorted([muller.id, plain.id])
    for text in ("muller", "MÜLLER", "Müller", "jose", "JOSÉ", "josé müller", "muller jose"):
        assert sorted(_search(client, coordinator, agency, text)) == both, text


def test_search_folds_letters_that_have_no_accent_to_strip(client, factory):
    agency, coordinator = factory.agency(), factory.staff()
    target = factory.referral(agency, **_patient(given_name="Søren", family_name="Łukasz"))
    for text in ("soren", "SØREN", "lukasz", "Łukasz"):
        assert _search(client, coordinator, agency, text) == [target.id], text


def test_search_in_other_scripts_ignores_case(client, factory):
    agency, coordinator = factory.agency(), factory.staff()
    target = factory.referral(agency, **_patient(given_name="Анна", family_name="Иванова"))
    greek = factory.referral(agency, **_patient(given_name="Νίκος", family_name="Παπαδόπουλος"))
    assert _search(client, coordinator, agency, "ИВАНОВА") == [target.id]
    assert _search(client, coordinator, agency, "анна") == [target.id]
    assert _search(client, coordinator, agency, "ΝΙΚΟΣ") == [greek.id]


def test_search_finds_a_phone_in_international_national_or_bare_digits(client, factory):
    agency, coordinator = factory.agency(), factory.staff()
    target = factory.referral(agency, **_patient(phone="+4915198765432", country="DE"))
    factory.referral(agency, **_patient(phone="+4917011112222", country="DE"))
    for text in (
        "+49 151 9876",
        "0151 9876 5432",
        "0151-98765432",
        "15198765432",
        "0049151987",
        "+49 (0)151 98765432",
    ):
        assert _search(client, coordinator, agency, text) == [target.id], text


def test_search_finds_an_email_whatever_its_case(client, factory):
    agency, coordinator = factory.agency(), factory.staff()
    target = factory.referral(agency, **_patient(email="Ayse.Yilmaz@Patient.Example"))
    factory.referral(agency)
    assert _search(client, coordinator, agency, "ayse.yilmaz@patient") == [target.id]
    assert _search(client, coordinator, agency, "AYSE.YILMAZ") == [target.id]


def test_search_finds_the_new_phone_after_the_agency_changes_it(client, factory):
    agency, coordinator = factory.agency(), factory.staff()
    target = factory.referral(agency, **_patient(phone="+4915198765432"))
    response = client.patch(
        f"{API}/referrals/{target.id}/patient",
        json={"phone": "+4916055544433"},
        headers=agency.headers(),
    )
    assert response.status_code == 200, response.json
    assert _search(client, coordinator, agency, "0160 555 444") == [target.id]
    assert _search(client, coordinator, agency, "0151 9876") == []


def test_a_search_that_matches_nothing_is_an_empty_page(client, factory):
    agency, coordinator = factory.agency(), factory.staff()
    factory.referral(agency)
    response = list_referrals(client, coordinator, q="zzqx-nobody")
    assert ids_of(response) == []
    assert response.json["next_cursor"] is None


def test_a_search_of_only_spaces_finds_nothing(client, factory):
    agency, coordinator = factory.agency(), factory.staff()
    factory.referral(agency)
    assert _search(client, coordinator, agency, "   ") == []


def test_search_combines_with_the_stage_filter(client, factory):
    agency, coordinator = factory.agency(), factory.staff()
    moved = factory.referral(agency, **_patient(family_name="Ödegaard"))
    factory.referral(agency, **_patient(family_name="Odegaard"))
    assert move(client, coordinator, moved.id, "awaiting_mri").status_code == 201
    assert _search(client, coordinator, agency, "odegaard", stage="awaiting_mri") == [moved.id]


def test_search_results_page_by_the_cursor(client, factory):
    agency, coordinator = factory.agency(), factory.staff()
    found = [factory.referral(agency, **_patient(family_name="Pagewise")) for _ in range(3)]
    factory.referral(agency)
    first = list_referrals(client, coordinator, q="pagewise", limit=2)
    second = list_referrals(
        client, coordinator, q="pagewise", limit=2, cursor=first.json["next_cursor"]
    )
    assert sorted(ids_of(first) + ids_of(second)) == sorted(r.id for r in found)
    assert second.json["next_cursor"] is None


def test_an_agency_does_not_search_another_agencys_referrals(client, factory):
    mine, theirs = factory.agency(), factory.agency()
    factory.referral(theirs, **_patient(family_name="Elsewhere"))
    assert ids_of(list_referrals(client, mine, q="elsewhere")) == []
