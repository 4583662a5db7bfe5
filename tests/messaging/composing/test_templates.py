# Test data is Turkish, Russian and Arabic text on purpose: its letters are not typos.
# ruff: noqa: RUF001
import re
from datetime import date, timedelta
from pathlib import Path

import pytest
from jinja2 import UndefinedError
from jinja2.exceptions import SecurityError

from crm.messaging.composing.templates import (
    DEFAULT_DIRECTORY,
    KINDS,
    SCREENED_TEXT_KINDS,
    SMS_VARIABLES,
    TemplateCatalogue,
    TemplateError,
    default_catalogue,
    normalise_language,
    render,
    sms_variables,
    template_variables,
)

LANGUAGES = ("en", "tr", "ar", "ru", "de")
LINK = "https://crm.example-hospital.com/p/Xk29fQ7wLm3"
SAFE = {
    "patient_first_name": "Maria",
    "recipient_name": "Elif",
    "hospital_name": "Acme Hospital",
    "hospital_phone": "+90 212 555 0100",
    "link": LINK,
    # a coordinator's own words, which only the health-detail screen lets into an SMS
    # (crm.messaging.operations.screen_sms_text), read only by SCREENED_TEXT_KINDS
    "screened_text": "The driver is waiting at gate B.",
}
HEALTH = {
    "procedure_name": "microdiscectomy",
    "procedure": "microdiscectomy",
    "diagnosis": "herniated disc with nerve root compression",
    "symptoms": "numbness and radiating leg pain",
    "price": "4,500 EUR",
    "message": "Your MRI shows a herniated disc; the surgery costs 4500 EUR",
    "subject": "Your surgery",
}
EMAIL_EXTRA = {
    "referral_ref": "R-1042",
    "agency_name": "Partner Health Travel",
    "days_waiting": 5,
    "valid_until": date(2025, 3, 1),
    "travel_date": date(2025, 3, 10),
    "since_treatment": timedelta(days=14),
    "unsubscribe_url": "https://crm.example-hospital.com/u/tok",
    # the procedure's lists, for the travel emails only
    "pre_travel_checklist": ["Your MRI images and the radiologist's report"],
    "pre_operative_instructions": ["Ask your doctor which medicines to stop before surgery"],
}
FULL = {**SAFE, **HEALTH, **EMAIL_EXTRA}

# What an SMS must never say, per language (word stems, case-insensitive).
HEALTH_WORDS = {
    "en": r"\bmri\b|scan|surg|operat|procedure|diagnos|disc|herni|pain|symptom|numb|price|"
    r"cost|treatment|anaesthe|spine|eur\b|microdisc",
    "tr": r"\bmr\b|emar|ameliyat|operasyon|tedavi|teşhis|tanı\b|fıtık|ağrı|belirti|fiyat|"
    r"ücret|omurga|narkoz",
    "de": r"\bmrt\b|operation|eingriff|diagnose|bandscheibe|schmerz|symptom|preis|kosten|"
    r"behandlung|narkose|wirbel",
    "ru": r"мрт|операц|диагноз|грыж|\bбол(ь|и|ью|ей|ям)\b|симптом|цен[аыу]|стоимост|"
    r"лечени|наркоз|позвон",
    "ar": r"رنين|عملية|جراح|تشخيص|فتق|ألم|الألم|أعراض|سعر|تكلفة|علاج|تخدير|الفقري",
}
CURRENCY = re.compile(r"[€$£₺₽]|\d[\d,.\s]*\d{3}")


@pytest.fixture(scope="module")
def catalogue() -> TemplateCatalogue:
    return default_catalogue()


def test_every_required_language_is_shipped(catalogue):
    assert set(LANGUAGES) <= set(catalogue.languages)


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_language_translates_every_kind_and_field(catalogue, language):
    for kind in KINDS:
        for field in ("sms", "subject", "text"):
            assert catalogue.template(kind, field, language)[1] == language, (kind, field)


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("kind", KINDS)
def test_no_sms_carries_health_detail(catalogue, kind, language):
    rendered = render(kind, "sms", language, FULL, catalogue)
    body = rendered.text.lower()
    for value in HEALTH.values():
        assert value.lower() not in body
    assert not re.search(HEALTH_WORDS[language], body), body
    assert not re.search(HEALTH_WORDS["en"], body), body
    assert not CURRENCY.search(body.replace(SAFE["hospital_phone"], "")), body


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("kind", KINDS)
def test_sms_templates_only_reference_allowed_variables(catalogue, kind, language):
    _, used = catalogue.template(kind, "sms", language)
    source = _source(language if used == language else "en", kind)
    assert template_variables(source) <= sms_variables(kind)


def test_only_the_free_text_kind_may_read_screened_text():
    assert set(SCREENED_TEXT_KINDS) == {"free_text"}
    assert "screened_text" not in SMS_VARIABLES
    assert "screened_text" in sms_variables("free_text")


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("kind", KINDS)
def test_every_sms_renders_short_with_only_the_safe_context(catalogue, kind, language):
    rendered = render(kind, "sms", language, SAFE, catalogue)
    assert rendered.subject is None and rendered.html is None
    assert rendered.language == language
    assert 1 <= rendered.segments <= 3
    assert "{" not in rendered.text and "\n" not in rendered.text


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("kind", KINDS)
def test_every_email_renders_text_and_html_in_its_language(catalogue, kind, language):
    rendered = render(kind, "email", language, FULL, catalogue)
    assert rendered.language == language
    assert rendered.subject and "\n" not in rendered.subject
    if kind != "help_reply":  # the help answer may go to a number with no referral
        assert LINK in rendered.text and f'href="{LINK}"' in rendered.html
    assert f'<html lang="{language}" dir="{"rtl" if language == "ar" else "ltr"}">' in (
        rendered.html
    )
    assert EMAIL_EXTRA["unsubscribe_url"] in rendered.text
    assert "{{" not in rendered.text and "{{" not in rendered.html
    assert rendered.segments is None


def test_an_email_without_an_unsubscribe_link_has_no_footer():
    context = {k: v for k, v in FULL.items() if k != "unsubscribe_url"}
    rendered = render("mri_review_overdue", "email", "ar", context)
    assert "<hr>" not in rendered.html and "--" not in rendered.text
    assert 'dir="rtl"' in rendered.html


def test_an_unknown_language_falls_back_to_english():
    rendered = render("plan_offered_patient", "sms", "pt-BR", SAFE)
    assert rendered.language == "en"
    assert rendered.text == render("plan_offered_patient", "sms", "en", SAFE).text


def test_language_tags_are_normalised():
    assert normalise_language("tr-TR") == normalise_language("TR") == "tr"
    assert normalise_language("ar_SA") == "ar"
    assert normalise_language(None) == normalise_language("") == "en"
    assert render("help_reply", "sms", "de-AT", SAFE).language == "de"


def test_a_missing_variable_is_an_error_not_an_empty_string():
    with pytest.raises(UndefinedError):
        render("plan_offered_patient", "sms", "en", {"hospital_name": "Acme"})


def test_html_is_autoescaped_but_text_is_not():
    context = {**FULL, "message": "<script>alert(1)</script> & co"}
    rendered = render("ad_hoc", "email", "en", context)
    assert "<script>" not in rendered.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co" in rendered.html
    assert "<script>alert(1)</script> & co" in rendered.text


def test_a_hostile_link_is_escaped_and_not_made_clickable():
    rendered = render("plan_offered_patient", "email", "en", {**FULL, "link": 'javascript:"x"'})
    assert 'href="javascript' not in rendered.html
    assert "javascript:&#34;x&#34;" in rendered.html


def test_dates_and_durations_are_formatted_in_the_message_language():
    assert "March 1, 2025" in render("plan_offered_patient", "email", "en", FULL).text
    assert "1. März 2025" in render("plan_offered_patient", "email", "de", FULL).text
    assert "1 марта 2025" in render("plan_offered_patient", "email", "ru", FULL).text
    assert "2 weeks" in render("follow_up_checkin", "email", "en", FULL).text
    assert "2 hafta" in render("follow_up_checkin", "email", "tr", FULL).text
    assert (
        "3 ay"
        in render(
            "follow_up_checkin", "email", "tr", {**FULL, "since_treatment": timedelta(days=90)}
        ).text
    )


def test_ucs2_languages_are_counted_as_such():
    assert render("help_reply", "sms", "ru", SAFE).encoding == "ucs2"
    assert render("help_reply", "sms", "en", SAFE).encoding == "gsm7"


def test_unknown_kinds_and_channels_are_refused():
    with pytest.raises(TemplateError):
        render("weather_report", "sms", "en", SAFE)
    with pytest.raises(TemplateError):
        render("help_reply", "fax", "en", SAFE)


def _source(language: str, kind: str) -> str:
    import tomllib

    data = tomllib.loads((DEFAULT_DIRECTORY / f"{language}.toml").read_text(encoding="utf-8"))
    return data[kind]["sms"]


def _write(folder: Path, name: str, body: str) -> None:
    (folder / name).write_text(body, encoding="utf-8")


def _english_complete(folder: Path) -> None:
    (folder / "en.toml").write_text(
        (DEFAULT_DIRECTORY / "en.toml").read_text(encoding="utf-8"), encoding="utf-8"
    )


def test_loading_rejects_an_sms_that_uses_a_health_variable(tmp_path):
    _english_complete(tmp_path)
    _write(tmp_path, "de.toml", '[mri_reminder]\nsms = "Ihr Eingriff {{ procedure_name }}"\n')
    with pytest.raises(TemplateError, match=r"de.toml \[mri_reminder\].sms.*procedure_name"):
        TemplateCatalogue(tmp_path)


def test_loading_rejects_screened_text_in_any_other_kinds_sms(tmp_path):
    _english_complete(tmp_path)
    _write(tmp_path, "de.toml", '[mri_reminder]\nsms = "{{ screened_text }}"\n')
    with pytest.raises(TemplateError, match=r"mri_reminder\].sms.*screened_text"):
        TemplateCatalogue(tmp_path)


def test_loading_rejects_unknown_kinds_fields_and_bad_syntax(tmp_path):
    _english_complete(tmp_path)
    for body, match in [
        ('[weather]\nsms = "x"\n', "unknown message kind"),
        ('[help_reply]\nfax = "x"\n', "unknown field"),
        ('[help_reply]\nsms = "{{ link "\n', "help_reply"),
        ("[help_reply\n", "tr.toml"),
    ]:
        _write(tmp_path, "tr.toml", body)
        with pytest.raises(TemplateError, match=match):
            TemplateCatalogue(tmp_path)


def test_loading_requires_a_complete_english_file(tmp_path):
    _write(tmp_path, "en.toml", '[help_reply]\nsms = "{{ hospital_phone }}"\n')
    with pytest.raises(TemplateError, match="is missing"):
        TemplateCatalogue(tmp_path)


def test_a_partial_translation_falls_back_field_by_field(tmp_path):
    _english_complete(tmp_path)
    _write(
        tmp_path,
        "tr.toml",
        '[help_reply]\nsms = "{{ hospital_name }}: yardım {{ hospital_phone }}"\n',
    )
    catalogue = TemplateCatalogue(tmp_path)
    assert catalogue.render("help_reply", "sms", "tr", SAFE).text.endswith(
        "yardım +90 212 555 0100"
    )
    email = catalogue.render("help_reply", "email", "tr", FULL)
    assert email.language == "en" and email.subject.startswith("How to reach")


def test_an_explicit_html_body_is_used_inside_the_layout(tmp_path):
    _english_complete(tmp_path)
    _write(
        tmp_path,
        "de.toml",
        '[help_reply]\nsubject = "Hilfe"\ntext = "Text"\nhtml = "<b>{{ hospital_name }}</b>"\n',
    )
    rendered = TemplateCatalogue(tmp_path).render("help_reply", "email", "de", FULL)
    assert "<b>Acme Hospital</b>" in rendered.html and '<html lang="de"' in rendered.html


def test_templates_run_in_a_sandbox(tmp_path):
    _english_complete(tmp_path)
    _write(
        tmp_path, "de.toml", '[help_reply]\nsubject = "x"\ntext = "{{ link.__class__.__mro__ }}"\n'
    )
    with pytest.raises(SecurityError):
        TemplateCatalogue(tmp_path).render("help_reply", "email", "de", FULL)
