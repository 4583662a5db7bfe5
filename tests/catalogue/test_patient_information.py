"""The patient information, pre-travel checklist and pre-operative instructions are data in
the catalogue, in every language we ship, with English as the fallback."""

from __future__ import annotations

import pytest

from crm.catalogue.information import (
    INFORMATION_FIELDS,
    PATIENT_LANGUAGES,
    patient_information,
    pre_operative_instructions,
    pre_travel_checklist,
)
from crm.catalogue.models import Procedure
from crm.catalogue.operations import read_catalogue
from crm.catalogue.queries import procedure_by_code
from crm.core.errors import ValidationFailed
from tests.conftest import ROOT

SHIPPED = read_catalogue(ROOT / "config" / "procedures.toml")


@pytest.mark.parametrize("row", SHIPPED, ids=[row["code"] for row in SHIPPED])
def test_every_shipped_procedure_tells_the_patient_everything_in_all_five_languages(row):
    for language in PATIENT_LANGUAGES:
        information = row["patient_information"].get(language, {})
        assert [name for name in INFORMATION_FIELDS if not information.get(name)] == [], language
        assert row["pre_travel_checklist"].get(language), language
        assert row["pre_operative_instructions"].get(language), language
        assert len(row["pre_travel_checklist"][language]) == len(row["pre_travel_checklist"]["en"])


def test_the_microdiscectomy_information_says_the_procedure_pages_facts(session):
    english = patient_information(procedure_by_code("microdiscectomy"), "en")
    assert "herniated disc" in english["what_it_is"] and "nerve root" in english["what_it_is"]
    assert "non-surgical treatment" in english["who_it_is_for"]
    assert "MRI" in english["who_it_is_for"]
    assert "General anaesthesia" in english["anaesthesia"]
    assert "45 to 60 minutes" in english["duration"]
    assert "one or two days" in english["hospital_stay"]
    assert "Physical therapy" in english["recovery"] and "several months" in english["recovery"]
    assert "4 to 6" in english["return_to_activity"]
    assert "surgeon" in english["risks"]


def test_the_information_is_read_in_the_patients_language(session):
    spine = procedure_by_code("microdiscectomy")
    assert patient_information(spine, "de")["anaesthesia"].startswith("Vollnarkose")
    assert patient_information(spine, "ar-SA")["name"] == "استئصال القرص المجهري"
    assert "Pasaportunuz" in pre_travel_checklist(spine, "tr")[0]
    assert "Спросите врача" in pre_operative_instructions(spine, "ru")[0]


def test_a_language_missing_from_the_data_reads_english_field_by_field():
    procedure = Procedure(
        patient_information={
            "en": {name: f"english {name}" for name in INFORMATION_FIELDS},
            "de": {"name": "Mikrodiskektomie"},
        },
        pre_travel_checklist={"en": ["Your passport"]},
        pre_operative_instructions={"en": ["Ask your doctor"], "de": ["Fragen Sie Ihren Arzt"]},
    )
    german = patient_information(procedure, "de")
    assert german["name"] == "Mikrodiskektomie"
    assert german["risks"] == "english risks"
    assert patient_information(procedure, "pt-BR")["name"] == "english name"
    assert pre_travel_checklist(procedure, "de") == ["Your passport"]
    assert pre_operative_instructions(procedure, "de") == ["Fragen Sie Ihren Arzt"]


def test_a_catalogue_without_english_information_is_refused(tmp_path):
    source = (ROOT / "config" / "procedures.toml").read_text(encoding="utf-8")
    broken = tmp_path / "procedures.toml"
    broken.write_text(
        source.replace('duration = "The operation usually takes 45 to 60 minutes."\n', ""),
        encoding="utf-8",
    )
    with pytest.raises(ValidationFailed) as refused:
        read_catalogue(broken)
    assert "patient_information.en.duration" in str(refused.value.extensions)


def test_an_unknown_information_field_is_refused(tmp_path):
    source = (ROOT / "config" / "procedures.toml").read_text(encoding="utf-8")
    broken = tmp_path / "procedures.toml"
    broken.write_text(
        source.replace(
            "[procedure.patient_information.de]\n",
            '[procedure.patient_information.de]\nprice = "x"\n',
        ),
        encoding="utf-8",
    )
    with pytest.raises(ValidationFailed):
        read_catalogue(broken)


def test_agencies_read_the_patient_information_in_the_catalogue_api(client, factory):
    agency = factory.agency()
    response = client.get("/api/v1/procedures/microdiscectomy", headers=agency.headers())
    assert response.status_code == 200
    assert response.json["patient_information"]["tr"]["name"] == "Mikrodiskektomi"
    assert set(response.json["pre_travel_checklist"]) == set(PATIENT_LANGUAGES)
    assert set(response.json["pre_operative_instructions"]) == set(PATIENT_LANGUAGES)
