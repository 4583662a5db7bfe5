"""What a procedure tells the patient, in the patient's language (data from the catalogue).

The catalogue keeps the patient information, the pre-travel checklist and the
pre-operative instructions per language; English is the fallback: field by field for the
information, as a whole list for the checklist and the instructions (half a list in one
language and half in another would read as a mistake).
"""

from __future__ import annotations

from crm.catalogue.models import Procedure

FALLBACK_LANGUAGE = "en"
# Every shipped procedure has them in each of these (a test holds the data to it).
PATIENT_LANGUAGES = ("en", "tr", "ar", "ru", "de")
INFORMATION_FIELDS = (
    "name",
    "what_it_is",
    "who_it_is_for",
    "anaesthesia",
    "duration",
    "hospital_stay",
    "recovery",
    "return_to_activity",
    "risks",
)


def base_language(tag: str | None) -> str:
    """`pt-BR`, `DE`, `tr_TR` -> `pt`, `de`, `tr`; nothing -> English."""
    return (tag or FALLBACK_LANGUAGE).replace("_", "-").split("-")[0].strip().lower()


def patient_information(procedure: Procedure, language: str | None) -> dict[str, str]:
    """Every information field in `language`, each missing one in English (or empty)."""
    by_language = procedure.patient_information or {}
    own = by_language.get(base_language(language), {})
    english = by_language.get(FALLBACK_LANGUAGE, {})
    return {name: own.get(name) or english.get(name, "") for name in INFORMATION_FIELDS}


def _list_in(lists: dict[str, list[str]] | None, language: str | None) -> list[str]:
    lists = lists or {}
    return list(lists.get(base_language(language)) or lists.get(FALLBACK_LANGUAGE) or [])


def pre_travel_checklist(procedure: Procedure, language: str | None) -> list[str]:
    return _list_in(procedure.pre_travel_checklist, language)


def pre_operative_instructions(procedure: Procedure, language: str | None) -> list[str]:
    return _list_in(procedure.pre_operative_instructions, language)
