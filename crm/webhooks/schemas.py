"""Webhook input (`...Args`) and output (`...Schema`) schemas, kept apart: a client never
sends an id, a secret or a status."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from crm.core.schemas import Args, QueryArgs
from crm.referrals.references import MAX_ROW_ID
from crm.webhooks.catalogue import EVENT_TYPES
from crm.webhooks.models import DELIVERY_STATUSES

ROW_ID = validate.Range(min=1, max=MAX_ROW_ID)
EVENT_TYPE = validate.OneOf(list(EVENT_TYPES))
_TYPES_EXAMPLE = ["referral.stage_changed", "plan.accepted"]


class WebhookEndpointArgs(Args):
    url = fields.String(
        required=True,
        validate=validate.Length(min=1, max=2000),
        metadata={
            "description": "https; its host must resolve to public addresses only",
            "example": "https://hooks.agency.example/crm",
        },
    )
    description = fields.String(load_default="", validate=validate.Length(max=200))
    event_types = fields.List(
        fields.String(validate=EVENT_TYPE),
        required=True,
        validate=validate.Length(min=1, max=len(EVENT_TYPES)),
        metadata={"example": _TYPES_EXAMPLE},
    )


class WebhookEndpointUpdateArgs(Args):
    url = fields.String(validate=validate.Length(min=1, max=2000))
    description = fields.String(validate=validate.Length(max=200))
    event_types = fields.List(
        fields.String(validate=EVENT_TYPE), validate=validate.Length(min=1, max=len(EVENT_TYPES))
    )


class WebhookAgencyQueryArgs(QueryArgs):
    agency_id = fields.Integer(
        validate=ROW_ID, metadata={"description": "staff (managers, admins): whose webhooks"}
    )


class WebhookDeliveryListArgs(WebhookAgencyQueryArgs):
    endpoint_id = fields.Integer(validate=ROW_ID)
    status = fields.List(fields.String(validate=validate.OneOf(DELIVERY_STATUSES)))
    since = fields.AwareDateTime(
        default_timezone=None, metadata={"description": "created at or after; ISO 8601 with a zone"}
    )
    cursor = fields.String(validate=validate.Length(max=200))
    limit = fields.Integer(load_default=25, validate=validate.Range(min=1, max=100))


class WebhookRedeliverArgs(Args):
    endpoint_id = fields.Integer(
        validate=ROW_ID,
        metadata={"description": "only to this endpoint; none: every endpoint that had it"},
    )


class WebhookRangeRedeliverArgs(Args):
    endpoint_id = fields.Integer(required=True, validate=ROW_ID)
    since = fields.AwareDateTime(required=True, default_timezone=None)
    until = fields.AwareDateTime(
        required=True, default_timezone=None, metadata={"description": "exclusive"}
    )


class WebhookEndpointSchema(Schema):
    id = fields.Integer()
    url = fields.String()
    description = fields.String()
    event_types = fields.List(fields.String(), metadata={"example": _TYPES_EXAMPLE})
    enabled = fields.Boolean()
    disabled_at = fields.DateTime(allow_none=True)
    disabled_reason = fields.String(allow_none=True)
    consecutive_failures = fields.Integer()
    created_at = fields.DateTime()
    updated_at = fields.DateTime()


class WebhookEndpointWithSecretSchema(WebhookEndpointSchema):
    secret = fields.String(
        metadata={
            "description": "the signing secret, shown in this answer only: keep it now",
            "example": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        }
    )


class WebhookEventTypeSchema(Schema):
    name = fields.String(metadata={"example": "referral.stage_changed"})
    description = fields.String()
    version = fields.Integer()


class WebhookDeliverySchema(Schema):
    id = fields.Integer()
    event_id = fields.String(
        attribute="event.public_id",
        metadata={"description": "the webhook-id header", "example": "msg_01J0Z8Q9ZK3V5"},
    )
    event_type = fields.String(attribute="event.type")
    referral_id = fields.Integer(attribute="event.referral_id", allow_none=True)
    endpoint_id = fields.Integer()
    endpoint_url = fields.String(attribute="endpoint.url")
    status = fields.String(metadata={"description": ", ".join(DELIVERY_STATUSES)})
    attempts = fields.Integer()
    last_status_code = fields.Integer(allow_none=True)
    last_error = fields.String(allow_none=True)
    next_attempt_at = fields.DateTime()
    delivered_at = fields.DateTime(allow_none=True)
    created_at = fields.DateTime()
    occurred_at = fields.DateTime(attribute="event.occurred_at")
    requested_by = fields.String(attribute="requested_by_label", allow_none=True)


class WebhookAttemptSchema(Schema):
    attempted_at = fields.DateTime()
    duration_ms = fields.Integer()
    status_code = fields.Integer(allow_none=True)
    error = fields.String(allow_none=True)


class WebhookDeliveryDetailSchema(WebhookDeliverySchema):
    attempts_made = fields.List(fields.Nested(WebhookAttemptSchema), data_key="attempt_log")
    payload = fields.Dict(attribute="event.payload", metadata={"description": "the body sent"})


class WebhookDeliveryPageSchema(Schema):
    items = fields.List(fields.Nested(WebhookDeliverySchema))
    next_cursor = fields.String(allow_none=True)


class WebhookRangeRedeliverySchema(Schema):
    endpoint_id = fields.Integer()
    since = fields.DateTime()
    until = fields.DateTime()
    deliveries = fields.Integer(metadata={"description": "new pending deliveries"})
