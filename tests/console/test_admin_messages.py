"""Nudge rules and message templates: the rules table, every language's preview, and an
admin's edit checked as the API checks it (refused in words) or reset."""

from __future__ import annotations

import re

from sqlalchemy import select

from crm.messaging.models import TemplateOverride
from tests.console.admin_support import audited, signed_in, submit, text

RULES = "/console/admin/rules"
KIND = "mri_reminder"
PAGE = f"/console/admin/templates/{KIND}"


def _save(client, language: str, field: str, source: str):
    return submit(client, f"{PAGE}/{language}/{field}", {"source": source}, PAGE)


def test_the_rules_page_lists_each_rule_with_its_timing_audience_channels_and_repeats(
    client, session
):
    signed_in(client, session, "manager")
    page = text(client.get(RULES))
    row = page[page.index("mri_<wbr>missing_<wbr>reminder") :].split("</tr>")[0]
    assert "enters" in row and "3 days after" in row
    assert "patient" in row and "sms" in row
    assert "2 more (3 in all), every 3 days" in row
    assert f'href="{PAGE}"' in page


def test_a_coordinator_may_not_open_the_rules(client, session):
    signed_in(client, session, "coordinator")
    assert client.get(RULES).status_code == 403
    assert client.get(PAGE).status_code == 403


def test_the_preview_shows_all_five_languages_with_sms_encoding_and_segments(client, session):
    signed_in(client, session, "manager")
    page = text(client.get(PAGE))
    for language in ("en", "tr", "ar", "ru", "de"):
        assert f'id="lang-{language}"' in page
    found = re.findall(r"(GSM-7|UCS-2) \(\d+ characters a segment\) · \d+ segments?", page)
    assert len(found) == 5
    assert "UCS-2" in found and "GSM-7" in found
    assert "Alex" in page  # the sample patient


def test_the_arabic_preview_is_right_to_left(client, session):
    signed_in(client, session, "manager")
    page = text(client.get(PAGE))
    assert '<div class="message-preview" lang="ar" dir="rtl">' in page


def test_a_manager_sees_the_previews_but_no_edit_forms(client, session):
    signed_in(client, session, "manager")
    assert "<textarea" not in text(client.get(PAGE))


def test_a_manager_may_not_edit_a_template(client, session):
    signed_in(client, session, "manager")
    assert _save(client, "en", "sms", "Hello {{ link }}").status_code == 403
    assert session.scalar(select(TemplateOverride)) is None


def test_an_admin_edits_an_sms_and_the_preview_shows_it(client, session):
    admin = signed_in(client, session, "admin")
    response = _save(client, "de", "sms", "{{ hospital_name }}: Neuigkeiten. {{ link }}")
    assert response.status_code == 303
    page = text(client.get(PAGE))
    base = client.application.config["CRM"]["PUBLIC_BASE_URL"].rstrip("/")
    # the SMS is previewed with a short link as long as the real one (issue 10)
    assert f"Istanbul Spine Centre: Neuigkeiten. {base}/s/SampleCode12" in page
    [event] = audited(session, "template.override", admin)
    assert event.detail == {"kind": KIND, "language": "de", "field": "sms"}


def test_an_sms_with_a_health_word_is_refused_in_words(client, session):
    signed_in(client, session, "admin")
    response = _save(client, "en", "sms", "Hi {{ patient_first_name }}, send your MRI: {{ link }}")
    assert response.status_code == 422
    page = text(response)
    assert "Not accepted: source: an SMS may not carry health detail or prices" in page
    assert "&#39;MRI&#39;" in page
    assert session.scalar(select(TemplateOverride)) is None


def test_a_refused_edit_is_shown_again_in_its_open_form_to_correct(client, session):
    signed_in(client, session, "admin")
    page = text(_save(client, "ru", "sms", "Ваша операция: {{ link }}"))
    assert '<details class="edit" open>' in page
    assert 'aria-invalid="true" autofocus>Ваша операция: {{ link }}</textarea>' in page


def test_an_sms_with_a_variable_outside_the_allow_list_is_refused_in_words(client, session):
    signed_in(client, session, "admin")
    response = _save(client, "en", "sms", "Hi, about {{ referral_ref }}: {{ link }}")
    assert "SMS may not use [&#39;referral_ref&#39;]" in text(response)


def test_an_empty_template_is_refused_in_words(client, session):
    signed_in(client, session, "admin")
    _save(client, "en", "subject", "   ")
    assert "Not accepted: the text is empty" in text(client.get(PAGE))


def test_resetting_a_field_brings_back_the_shipped_text_and_is_audited(client, session):
    admin = signed_in(client, session, "admin")
    _save(client, "tr", "subject", "Yeni konu")
    assert "Yeni konu" in text(client.get(PAGE))
    response = submit(client, f"{PAGE}/tr/subject/reset", {}, PAGE)
    assert response.status_code == 303
    page = text(client.get(PAGE))
    assert "Yeni konu" not in page
    assert session.scalar(select(TemplateOverride)) is None
    assert audited(session, "template.revert", admin)


def test_resetting_a_field_that_was_never_edited_is_refused_in_words(client, session):
    signed_in(client, session, "admin")
    submit(client, f"{PAGE}/en/sms/reset", {}, PAGE)
    assert "no override for this template" in text(client.get(PAGE))


# --- a rule's page -----------------------------------------------------------------------

RULE = "/console/admin/rules/mri_missing_reminder"
RULE_FORM = {
    "offset_minutes": "2880",
    "max_repeats": "1",
    "repeat_every_minutes": "1440",
    "task_after_last": "Call the patient",
    "active": "on",
}


def test_a_manager_reads_a_rule_but_may_not_change_it(client, session):
    signed_in(client, session, "manager")
    page = text(client.get(RULE))
    assert "3 days after" in page and "Save the rule" not in page
    assert submit(client, RULE, RULE_FORM, RULE).status_code == 403


def test_an_admin_changes_a_rules_timing_and_it_is_audited(client, session):
    admin = signed_in(client, session, "admin")
    response = submit(client, RULE, RULE_FORM, RULE)
    assert response.status_code == 303
    page = text(client.get(RULE))
    assert "2 days after" in page and "1 more, every 1 day" in page
    [event] = audited(session, "nudge_rule.update", admin)
    assert event.detail["code"] == "mri_missing_reminder"


def test_an_admin_switches_a_rule_off(client, session):
    signed_in(client, session, "admin")
    submit(client, RULE, {**RULE_FORM, "active": ""}, RULE)
    assert '<span class="tag">off</span>' in text(client.get(RULE))


def test_repeats_without_an_interval_are_refused_in_words(client, session):
    signed_in(client, session, "admin")
    submit(client, RULE, {**RULE_FORM, "repeat_every_minutes": "0"}, RULE)
    page = text(client.get(RULE))
    assert "Not accepted: repeat_every_minutes: required (&gt; 0) when max_repeats &gt; 0" in page
    assert "3 days after" in page  # unchanged


def test_a_delay_that_is_not_a_number_is_refused_in_words(client, session):
    signed_in(client, session, "admin")
    submit(client, RULE, {**RULE_FORM, "offset_minutes": "soon"}, RULE)
    assert "Not accepted: offset_minutes: Not a valid integer." in text(client.get(RULE))


def test_the_preview_fills_dates_with_sample_values(client, session):
    signed_in(client, session, "manager")
    page = text(client.get("/console/admin/templates/plan_offered_patient"))
    assert "valid until March 31, 2026" in page
    assert "None" not in page
