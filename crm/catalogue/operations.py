"""Loading the procedure catalogue from its data file."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from crm.catalogue.check_in import (
    FREE_TEXT,
    LANGUAGES,
    QUESTION_TYPES,
    RESERVED_REVIEW_CODES,
    RULE_LEVELS,
    SCORE_MAX,
    SCORE_MIN,
)
from crm.catalogue.information import FALLBACK_LANGUAGE, INFORMATION_FIELDS
from crm.catalogue.models import Procedure
from crm.core.data_files import upsert_by_code
from crm.core.errors import ValidationFailed, flatten_marshmallow


class FollowUpPoint(Schema):
    label = fields.String(required=True, validate=validate.Length(min=1, max=64))
    offset_days = fields.Integer(required=True, validate=validate.Range(min=0, max=3650))


_LANGUAGE = validate.Regexp(r"^[a-z]{2,3}$", error="a language code such as en, tr, ar")
_TEXT = fields.String(validate=validate.Length(min=1, max=4000))


# One language's patient information; a field it lacks is read in English.
PatientInformation = Schema.from_dict(
    {name: fields.String(validate=validate.Length(min=1, max=4000)) for name in INFORMATION_FIELDS},
    name="PatientInformation",
)


def _per_language(values: fields.Field) -> fields.Dict:
    return fields.Dict(keys=fields.String(validate=_LANGUAGE), values=values, load_default=dict)


CODE = validate.Regexp(r"^[a-z][a-z0-9_]{0,63}$", error="lower_snake_case")


class Labels(Schema):
    """A label in every shipped language: data, not gettext."""

    en = fields.String(required=True, validate=validate.Length(min=1, max=500))
    tr = fields.String(required=True, validate=validate.Length(min=1, max=500))
    ar = fields.String(required=True, validate=validate.Length(min=1, max=500))
    ru = fields.String(required=True, validate=validate.Length(min=1, max=500))
    de = fields.String(required=True, validate=validate.Length(min=1, max=500))


assert tuple(Labels().fields) == LANGUAGES


class OptionRow(Schema):
    code = fields.String(required=True, validate=CODE)
    label = fields.Nested(Labels, required=True)


class QuestionRow(Schema):
    """One check-in question: a code, a type, its label per language, score thresholds."""

    code = fields.String(required=True, validate=CODE)
    type = fields.String(required=True, validate=validate.OneOf(QUESTION_TYPES))
    label = fields.Nested(Labels, required=True)
    options = fields.List(fields.Nested(OptionRow), load_default=list)
    high_score = fields.Integer(load_default=None, validate=validate.Range(SCORE_MIN, SCORE_MAX))
    rising = fields.Integer(load_default=None, validate=validate.Range(1, SCORE_MAX))

    @validates_schema
    def fits_its_type(self, data: dict[str, Any], **_: Any) -> None:
        if data["code"] == FREE_TEXT:
            raise ValidationError("free_text is every check-in's own field", "code")
        if data["type"] == "choice" and len(data["options"]) < 2:
            raise ValidationError("a choice needs at least two options", "options")
        if data["type"] != "choice" and data["options"]:
            raise ValidationError("only a choice has options", "options")
        for name in ("high_score", "rising"):
            if data["type"] != "score" and data[name] is not None:
                raise ValidationError("only a score has thresholds", name)


class RuleRow(Schema):
    """Which answers raise an urgent red flag, or a task that is not urgent."""

    raises = fields.String(required=True, validate=validate.OneOf(RULE_LEVELS))
    reason = fields.String(required=True, validate=validate.Length(min=1, max=200))
    when = fields.Dict(keys=fields.String(), required=True, validate=validate.Length(min=1))
    unless = fields.Dict(keys=fields.String(), load_default=dict)


class ReviewOptionRow(Schema):
    code = fields.String(required=True, validate=validate.Length(min=1, max=20))
    label = fields.String(required=True, validate=validate.Length(min=1, max=200))


class ReviewFieldRow(Schema):
    """A finding the specialist records for this procedure, chosen among its values."""

    code = fields.String(required=True, validate=CODE)
    label = fields.String(required=True, validate=validate.Length(min=1, max=200))
    options = fields.List(
        fields.Nested(ReviewOptionRow), required=True, validate=validate.Length(min=1)
    )
    required = fields.Boolean(load_default=False)

    @validates_schema
    def not_a_review_field(self, data: dict[str, Any], **_: Any) -> None:
        if data["code"] in RESERVED_REVIEW_CODES:
            raise ValidationError("a field every review has already", "code")


def _value_fits(question: dict[str, Any], value: Any) -> bool:
    if question["type"] == "yes_no":
        return isinstance(value, bool)
    if question["type"] == "score":
        return type(value) is int and SCORE_MIN <= value <= SCORE_MAX
    return value in {option["code"] for option in question["options"]}


def _rule_errors(questions: list[dict[str, Any]], rules: list[dict[str, Any]]) -> dict:
    by_code = {q["code"]: q for q in questions}
    errors: dict[str, str] = {}
    for index, rule in enumerate(rules):
        for part in ("when", "unless"):
            for code, raw in rule[part].items():
                values = raw if isinstance(raw, list) else [raw]
                where = f"check_in_rules[{index}].{part}.{code}"
                if code not in by_code:
                    errors[where] = "not a question of this procedure"
                elif not values or not all(_value_fits(by_code[code], v) for v in values):
                    errors[where] = f"not an answer {by_code[code]['type']} {code!r} takes"
    return errors


def _unique(rows: list[dict[str, Any]], name: str) -> dict[str, str]:
    codes = [row["code"] for row in rows]
    return {f"{name}.code": "codes must be unique"} if len(codes) != len(set(codes)) else {}


class ProcedureRow(Schema):
    """What one catalogue row must contain; the file is refused whole if any row is wrong."""

    code = fields.String(
        required=True, validate=validate.Regexp(r"^[a-z][a-z0-9_]{1,63}$", error="lower_snake_case")
    )
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    specialty = fields.String(required=True, validate=validate.Length(min=1, max=100))
    summary = fields.String(load_default="")
    candidates = fields.String(load_default="")
    requires_mri = fields.Boolean(load_default=False)
    anaesthesia = fields.String(
        required=True, validate=validate.OneOf(["general", "regional", "local", "sedation", "none"])
    )
    duration_minutes_min = fields.Integer(required=True, validate=validate.Range(min=1))
    duration_minutes_max = fields.Integer(required=True, validate=validate.Range(min=1))
    hospital_nights_min = fields.Integer(required=True, validate=validate.Range(min=0))
    hospital_nights_max = fields.Integer(required=True, validate=validate.Range(min=0))
    recovery_weeks_min = fields.Integer(required=True, validate=validate.Range(min=0))
    recovery_weeks_max = fields.Integer(required=True, validate=validate.Range(min=0))
    arrive_days_before_admission = fields.Integer(load_default=1, validate=validate.Range(min=0))
    nights_in_city_after_discharge = fields.Integer(load_default=0, validate=validate.Range(min=0))
    prerequisites = fields.List(fields.String(), load_default=list)
    typical_complaints = fields.List(fields.String(), load_default=list)
    conservative_treatments = fields.List(fields.String(), load_default=list)
    risks_discussed = fields.String(load_default="")
    follow_up_schedule = fields.List(fields.Nested(FollowUpPoint), load_default=list)
    patient_information = _per_language(fields.Nested(PatientInformation))
    pre_travel_checklist = _per_language(fields.List(_TEXT, validate=validate.Length(min=1)))
    pre_operative_instructions = _per_language(fields.List(_TEXT, validate=validate.Length(min=1)))
    check_in_questions = fields.List(fields.Nested(QuestionRow), load_default=list)
    check_in_rules = fields.List(fields.Nested(RuleRow), load_default=list)
    review_fields = fields.List(fields.Nested(ReviewFieldRow), load_default=list)
    active = fields.Boolean(load_default=True)

    @validates_schema
    def english_is_complete(self, data: dict[str, Any], **_: Any) -> None:
        """English is every other language's fallback, so it must say everything."""
        information = data.get("patient_information") or {}
        if information:
            english = information.get(FALLBACK_LANGUAGE, {})
            for name in INFORMATION_FIELDS:
                if not english.get(name):
                    raise ValidationError("required in English", f"patient_information.en.{name}")
        for name in ("pre_travel_checklist", "pre_operative_instructions"):
            if data.get(name) and FALLBACK_LANGUAGE not in data[name]:
                raise ValidationError("required in English", f"{name}.en")

    @validates_schema
    def ranges_are_ordered(self, data: dict[str, Any], **_: Any) -> None:
        for low, high in (
            ("duration_minutes_min", "duration_minutes_max"),
            ("hospital_nights_min", "hospital_nights_max"),
            ("recovery_weeks_min", "recovery_weeks_max"),
        ):
            if data[high] < data[low]:
                raise ValidationError(f"must not be less than {low}", high)

    @validates_schema
    def rules_name_its_questions(self, data: dict[str, Any], **_: Any) -> None:
        questions, rules = data["check_in_questions"], data["check_in_rules"]
        errors = {
            **_unique(questions, "check_in_questions"),
            **_unique(data["review_fields"], "review_fields"),
            **_rule_errors(questions, rules),
        }
        if errors:
            raise ValidationError(errors)


def read_catalogue(path: str | Path) -> list[dict[str, Any]]:
    with Path(path).open("rb") as handle:
        raw = tomllib.load(handle).get("procedure", [])
    try:
        rows = ProcedureRow(many=True).load(raw)
    except ValidationError as exc:
        raise ValidationFailed(flatten_marshmallow(exc.messages, "procedure")) from exc
    codes = [row["code"] for row in rows]
    if len(codes) != len(set(codes)):
        raise ValidationFailed({"procedure.code": "codes must be unique"})
    return rows


def load_catalogue(path: str | Path) -> tuple[int, int]:
    """Insert new rows and update existing ones by code; returns (created, updated)."""
    return upsert_by_code(Procedure, read_catalogue(path))
