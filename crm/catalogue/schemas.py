from marshmallow import Schema, fields


class FollowUpPointSchema(Schema):
    label = fields.String()
    offset_days = fields.Integer()


class CheckInQuestionSchema(Schema):
    code = fields.String()
    type = fields.String(metadata={"description": "score (0-10), yes_no or choice"})
    label = fields.Dict(keys=fields.String(), values=fields.String())
    options = fields.List(fields.Dict())
    high_score = fields.Integer(allow_none=True)
    rising = fields.Integer(allow_none=True)


class ReviewFieldSchema(Schema):
    code = fields.String()
    label = fields.String()
    options = fields.List(fields.Dict())
    required = fields.Boolean()


class ProcedureSchema(Schema):
    code = fields.String()
    name = fields.String()
    specialty = fields.String()
    summary = fields.String()
    candidates = fields.String()
    requires_mri = fields.Boolean()
    anaesthesia = fields.String()
    duration_minutes_min = fields.Integer()
    duration_minutes_max = fields.Integer()
    hospital_nights_min = fields.Integer()
    hospital_nights_max = fields.Integer()
    recovery_weeks_min = fields.Integer()
    recovery_weeks_max = fields.Integer()
    arrive_days_before_admission = fields.Integer()
    nights_in_city_after_discharge = fields.Integer()
    prerequisites = fields.List(fields.String())
    typical_complaints = fields.List(fields.String())
    conservative_treatments = fields.List(fields.String())
    risks_discussed = fields.String()
    follow_up_schedule = fields.List(fields.Nested(FollowUpPointSchema))
    patient_information = fields.Dict(
        keys=fields.String(),
        values=fields.Dict(keys=fields.String(), values=fields.String()),
        metadata={"description": "what the patient reads before consenting, per language"},
    )
    pre_travel_checklist = fields.Dict(
        keys=fields.String(),
        values=fields.List(fields.String()),
        metadata={"description": "per language"},
    )
    pre_operative_instructions = fields.Dict(
        keys=fields.String(),
        values=fields.List(fields.String()),
        metadata={"description": "per language"},
    )
    check_in_questions = fields.List(
        fields.Nested(CheckInQuestionSchema),
        metadata={"description": "what each follow-up check-in asks, labelled per language"},
    )
    review_fields = fields.List(
        fields.Nested(ReviewFieldSchema),
        metadata={"description": "the specialist's procedure-specific findings"},
    )
