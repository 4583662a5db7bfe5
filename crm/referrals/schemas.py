"""Referral input (`...Args`) and output (`...Schema`) schemas, kept apart."""

from __future__ import annotations

from marshmallow import Schema, fields, post_dump, validate

from crm.core.schemas import Args, QueryArgs
from crm.patients.schemas import ContactArgs, PatientArgs, PatientSchema
from crm.referrals.references import MAX_ROW_ID
from crm.referrals.stages import ALL_STAGES, LostReason

WEEKS = validate.Range(min=0, max=2600)
STAGE = validate.OneOf([str(stage) for stage in ALL_STAGES])
# Ids are 32-bit integer columns; a larger number would reach PostgreSQL and fail there.
ROW_ID = validate.Range(min=1, max=MAX_ROW_ID)


class TreatmentTriedArgs(Args):
    treatment = fields.String(
        required=True,
        validate=validate.Length(min=1, max=100),
        metadata={"example": "physical_therapy"},
    )
    duration_weeks = fields.Integer(required=True, validate=WEEKS)


class IntakeArgs(Args):
    complaints = fields.List(
        fields.String(validate=validate.Length(min=1, max=200)),
        load_default=list,
        validate=validate.Length(max=20),
        metadata={"example": ["severe_persistent_low_back_pain", "radiating_leg_pain"]},
    )
    symptom_duration_weeks = fields.Integer(validate=WEEKS, allow_none=True)
    treatments_tried = fields.List(
        fields.Nested(TreatmentTriedArgs), load_default=list, validate=validate.Length(max=20)
    )
    pain_score = fields.Integer(validate=validate.Range(min=0, max=10), allow_none=True)
    notes = fields.String(load_default="", validate=validate.Length(max=5000))


class ReferralCreateArgs(Args):
    procedure = fields.String(required=True, metadata={"example": "microdiscectomy"})
    agency_reference = fields.String(
        validate=validate.Length(min=1, max=100),
        allow_none=True,
        metadata={"description": "Your own id for this patient; unique per agency"},
    )
    patient = fields.Nested(PatientArgs, required=True)
    intake = fields.Nested(IntakeArgs, load_default=dict)


class ContactUpdateArgs(ContactArgs):
    pass


class ReferralListArgs(QueryArgs):
    stage = fields.List(fields.String(validate=STAGE))
    updated_since = fields.AwareDateTime(
        default_timezone=None, metadata={"description": "ISO 8601 with a zone"}
    )
    cursor = fields.String(validate=validate.Length(max=200))
    limit = fields.Integer(load_default=25, validate=validate.Range(min=1, max=100))


class StaffReferralListArgs(ReferralListArgs):
    agency_id = fields.Integer(validate=ROW_ID)
    direct = fields.Boolean(metadata={"description": "only referrals with no agency"})
    owner_id = fields.Integer(validate=ROW_ID)
    unassigned = fields.Boolean()
    procedure = fields.String()
    q = fields.String(
        validate=validate.Length(min=2, max=100),
        metadata={
            "description": "search by hospital reference (R-000013, R13, 13), agency reference,"
            " patient name (any case, accents ignored), email, or phone in any formatting"
            " (+49 151 1234, 0151 1234 as dialled in the patient's country, digits only)"
        },
    )


class TransitionArgs(Args):
    to = fields.String(required=True, validate=STAGE, metadata={"example": "awaiting_mri"})
    reason = fields.String(
        validate=validate.OneOf([str(reason) for reason in LostReason]),
        metadata={"description": "required when moving to lost"},
    )
    note = fields.String(validate=validate.Length(max=5000))


class OwnerArgs(Args):
    owner_id = fields.Integer(required=True, allow_none=True, validate=ROW_ID)


class NoteArgs(Args):
    body = fields.String(required=True, validate=validate.Length(min=1, max=10000))


class TreatmentTriedSchema(Schema):
    treatment = fields.String()
    duration_weeks = fields.Integer()


class IntakeSchema(Schema):
    complaints = fields.List(fields.String())
    symptom_duration_weeks = fields.Integer(allow_none=True)
    treatments_tried = fields.List(fields.Nested(TreatmentTriedSchema))
    pain_score = fields.Integer(allow_none=True)
    notes = fields.String(attribute="intake_notes")


_INTAKE = IntakeSchema()


class PersonRefSchema(Schema):
    id = fields.Integer()
    name = fields.String()


class TransitionSchema(Schema):
    from_stage = fields.String(allow_none=True, data_key="from")
    to_stage = fields.String(data_key="to")
    actor_type = fields.String()
    actor_label = fields.String(data_key="actor")
    reason = fields.String(allow_none=True)
    note = fields.String(allow_none=True)
    occurred_at = fields.DateTime()


class NoteSchema(Schema):
    id = fields.Integer()
    author_label = fields.String(data_key="author")
    body = fields.String()
    created_at = fields.DateTime()


def attribution_of(referral) -> str | None:
    """A neutral word for whose patient this is: never another agency's name or id."""
    if referral.agency_id is None or referral.attributed_agency_id is None:
        return None
    return (
        "attributed" if referral.attributed_agency_id == referral.agency_id else "already_in_care"
    )


class ReferralSchema(Schema):
    id = fields.Integer()
    reference = fields.String(
        metadata={
            "description": "the hospital's reference, told to the patient",
            "example": "R-000013",
        }
    )
    stage = fields.String()
    stage_entered_at = fields.DateTime()
    held_from_stage = fields.String(allow_none=True)
    lost_reason = fields.String(allow_none=True)
    procedure = fields.String(attribute="procedure.code", metadata={"example": "microdiscectomy"})
    agency_reference = fields.String(allow_none=True)
    agency = fields.Nested(PersonRefSchema, allow_none=True)
    owner = fields.Nested(PersonRefSchema, allow_none=True)
    attribution = fields.Function(
        lambda referral: attribution_of(referral),
        allow_none=True,
        metadata={
            "description": "`attributed`: the patient is this referral's agency's;"
            " `already_in_care`: the patient is already in care at the hospital;"
            " null: a direct enquiry or not decided yet",
            "example": "attributed",
        },
    )
    patient = fields.Nested(PatientSchema)
    intake = fields.Function(lambda referral: _INTAKE.dump(referral))
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class ReferralDetailSchema(ReferralSchema):
    history = fields.List(fields.Nested(TransitionSchema))
    time_in_stages = fields.Dict(
        keys=fields.String(), values=fields.Integer(), metadata={"description": "seconds"}
    )
    allowed_transitions = fields.List(fields.String())
    notes = fields.List(
        fields.Nested(NoteSchema), metadata={"description": "internal notes; staff only"}
    )

    @post_dump
    def hide_staff_only(self, data, **_):
        if data.get("notes") is None:
            data.pop("notes", None)
        return data


class ReferralPageSchema(Schema):
    items = fields.List(fields.Nested(ReferralSchema))
    next_cursor = fields.String(allow_none=True)
