"""A merge's answer and its preview (output only: a merge takes no input)."""

from __future__ import annotations

from marshmallow import Schema, fields

from crm.duplicates.schemas import MatchSchema, PatientRefSchema


class ConsentOutcomeSchema(Schema):
    channel = fields.String(metadata={"example": "sms"})
    survivor = fields.Boolean(
        allow_none=True, metadata={"description": "the survivor's consent before (null: none)"}
    )
    merged = fields.Boolean(
        allow_none=True, metadata={"description": "the merged row's consent (null: none)"}
    )
    result = fields.Boolean(
        allow_none=True, metadata={"description": "the survivor's consent after (null: none)"}
    )
    reason = fields.String(
        metadata={
            "description": "none, granted, granted_later (a grant after every withdrawal),"
            " withdrawn (a withdrawal on either row stands), other_address (the merged"
            " row's grant was for another address: not carried over)"
        }
    )


class RefusalSchema(Schema):
    refusal = fields.String(
        metadata={"description": "decided, not_likely, already_merged, erased, legal_hold"}
    )
    detail = fields.String()


class MergeSchema(Schema):
    match = fields.Nested(MatchSchema)
    survivor = fields.Nested(
        PatientRefSchema, metadata={"description": "the patient already known: it stays"}
    )
    merged = fields.Nested(
        PatientRefSchema,
        metadata={"description": "the new referral's patient: kept as a tombstone"},
    )
    referral_ids = fields.Method(
        "_referral_ids", metadata={"description": "the referrals moved to the survivor"}
    )
    filled = fields.Method(
        "_filled", metadata={"description": "the survivor's empty fields filled from the other"}
    )
    conflicts = fields.List(
        fields.String(),
        metadata={
            "description": "fields both rows have with different values: the"
            " survivor's stays, the other's stays on the tombstone"
        },
    )
    consents = fields.Method("_consents", metadata={"description": "each channel's outcome"})

    def _referral_ids(self, plan) -> list[int]:
        return [r.id for r in plan.referrals]

    def _filled(self, plan) -> list[str]:
        return sorted(plan.filled)

    def _consents(self, plan) -> list[dict]:
        return [ConsentOutcomeSchema().dump(c.as_json()) for c in plan.consents]


class MergePreviewSchema(MergeSchema):
    refused = fields.Method(
        "_refused",
        allow_none=True,
        metadata={"description": "why a merge would be refused now (null: it would run)"},
    )

    def _refused(self, plan) -> dict | None:
        if plan.refusal is None:
            return None
        return {"refusal": plan.refusal.extensions["refusal"], "detail": plan.refusal.detail}
