"""Check-in questions, alert rules and review fields are catalogue data, checked on load."""

from __future__ import annotations

import pytest

from crm.catalogue.check_in import LANGUAGES
from crm.catalogue.operations import read_catalogue
from crm.core.errors import ValidationFailed
from tests.conftest import ROOT
from tests.helpers import API

ROW = """
[[procedure]]
code = "test_procedure"
name = "Test"
specialty = "Testing"
anaesthesia = "local"
duration_minutes_min = 10
duration_minutes_max = 20
hospital_nights_min = 0
hospital_nights_max = 0
recovery_weeks_min = 0
recovery_weeks_max = 1

[[procedure.check_in_questions]]
code = "pain"
type = "score"
high_score = 8
label = { en = "Pain", tr = "Dert", ar = "ألم", ru = "Боль", de = "Schmerzen" }

[[procedure.check_in_questions]]
code = "fever"
type = "yes_no"
label = { en = "Fever", tr = "Ateş", ar = "حمى", ru = "Температура", de = "Fieber" }
"""


def _rule(raises: str, when: str) -> str:
    return f'[[procedure.check_in_rules]]\nraises = "{raises}"\nreason = "x"\nwhen = {when}\n'


def _read(tmp_path, extra: str = "", row: str = ROW) -> list[dict]:
    path = tmp_path / "procedures.toml"
    path.write_text(row + extra, encoding="utf-8")
    return read_catalogue(path)


def _refusal(tmp_path, extra: str = "", row: str = ROW) -> dict[str, str]:
    with pytest.raises(ValidationFailed) as refused:
        _read(tmp_path, extra, row)
    return {e["field"]: e["reason"] for e in refused.value.extensions["errors"]}


def test_a_row_with_questions_and_a_rule_loads(tmp_path):
    rule = _rule("red_flag", "{ fever = true }")
    [row] = _read(tmp_path, rule)
    assert [q["code"] for q in row["check_in_questions"]] == ["pain", "fever"]
    assert row["check_in_rules"] == [
        {"raises": "red_flag", "reason": "x", "when": {"fever": True}, "unless": {}}
    ]


def test_a_rule_naming_a_question_the_procedure_does_not_ask_refuses_the_file(tmp_path):
    rule = _rule("red_flag", "{ saddle_numbness = true }")
    errors = _refusal(tmp_path, rule)
    assert errors == {
        "procedure[0].check_in_rules[0].when.saddle_numbness": "not a question of this procedure"
    }


def test_a_rule_with_an_answer_its_question_cannot_take_refuses_the_file(tmp_path):
    rule = (
        '[[procedure.check_in_rules]]\nraises = "task"\nreason = "x"\nwhen = { fever = "often" }\n'
    )
    assert "procedure[0].check_in_rules[0].when.fever" in _refusal(tmp_path, rule)


def test_a_question_without_a_label_in_every_language_refuses_the_file(tmp_path):
    row = ROW.replace(', de = "Schmerzen"', "")
    assert "procedure[0].check_in_questions[0].label.de" in _refusal(tmp_path, row=row)


def test_a_threshold_on_a_question_that_is_no_score_refuses_the_file(tmp_path):
    row = ROW.replace('type = "yes_no"', 'type = "yes_no"\nhigh_score = 5')
    assert "procedure[0].check_in_questions[1].high_score" in _refusal(tmp_path, row=row)


def test_free_text_is_no_question_code(tmp_path):
    row = ROW.replace('code = "fever"', 'code = "free_text"')
    assert "procedure[0].check_in_questions[1].code" in _refusal(tmp_path, row=row)


def test_a_review_field_may_not_shadow_a_field_every_review_has(tmp_path):
    extra = (
        '[[procedure.review_fields]]\ncode = "decision"\nlabel = "x"\n'
        'options = [{ code = "a", label = "A" }]\n'
    )
    assert "procedure[0].review_fields[0].code" in _refusal(tmp_path, extra)


def test_every_shipped_question_and_option_speaks_all_five_languages():
    for row in read_catalogue(ROOT / "config" / "procedures.toml"):
        for question in row["check_in_questions"]:
            assert set(question["label"]) == set(LANGUAGES), (row["code"], question["code"])
            for option in question["options"]:
                assert set(option["label"]) == set(LANGUAGES), (question["code"], option)


def test_the_knee_is_a_second_row_with_its_own_durations_schedule_and_questions(client, factory):
    response = client.get(f"{API}/procedures/knee_replacement", headers=factory.agency().headers())
    assert response.status_code == 200
    knee = response.json
    assert (knee["hospital_nights_min"], knee["hospital_nights_max"]) == (2, 4)
    assert knee["nights_in_city_after_discharge"] == 7
    assert [p["offset_days"] for p in knee["follow_up_schedule"]] == [1, 14, 42, 90, 365]
    codes = [q["code"] for q in knee["check_in_questions"]]
    assert "calf_pain_or_swelling" in codes and "back_pain" not in codes
    calf = next(q for q in knee["check_in_questions"] if q["code"] == "calf_pain_or_swelling")
    assert calf["label"]["de"] == "Schmerzen, Druckempfindlichkeit oder Schwellung in der Wade"
    assert [f["code"] for f in knee["review_fields"]] == ["side", "kellgren_lawrence_grade"]
