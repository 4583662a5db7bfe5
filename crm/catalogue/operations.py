"""Loading the procedure catalogue from its data file."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

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
