"""Duplicate match input (`...Args`) and output (`...Schema`)."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from crm.core.schemas import QueryArgs
from crm.duplicates.models import STATUSES


class MatchListArgs(QueryArgs):
    status = fields.String(
        validate=validate.OneOf(STATUSES), metadata={"description": "open, linked or dismissed"}
    )
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=500))


class PatientRefSchema(Schema):
    id = fields.Integer()
    name = fields.String(attribute="full_name")
    date_of_birth = fields.Date(allow_none=True)


class EvidenceSchema(Schema):
    matched = fields.List(
        fields.String(),
        attribute="fields",
        data_key="fields",
        metadata={"example": ["phone", "date_of_birth"]},
    )
    name_score = fields.Integer(metadata={"description": "rapidfuzz token_sort_ratio, 0-100"})


class MatchSchema(Schema):
    id = fields.Integer()
    kind = fields.String(metadata={"description": "exact (linked on arrival) or likely"})
    status = fields.String(metadata={"description": "open, linked or dismissed"})
    evidence = fields.Nested(EvidenceSchema)
    referral_id = fields.Integer(metadata={"description": "the new referral"})
    patient = fields.Nested(PatientRefSchema, metadata={"description": "its patient"})
    matched_patient = fields.Nested(
        PatientRefSchema, metadata={"description": "the patient already known"}
    )
    created_at = fields.DateTime()
    decided_at = fields.DateTime(allow_none=True)
    decided_by = fields.String(attribute="decided_by_label", allow_none=True)


class MatchPageSchema(Schema):
    items = fields.List(fields.Nested(MatchSchema))
