from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate

from crm.core.schemas import Args


def no_repeats(values: list[str]) -> None:
    if len(set(values)) != len(values):
        raise ValidationError("names a channel twice; give each channel once")


class AdHocMessageArgs(Args):
    channels = fields.List(
        fields.String(validate=validate.OneOf(["sms", "email", "whatsapp"])),
        load_default=lambda: ["sms", "email"],
        validate=[validate.Length(min=1, max=3), no_repeats],
    )
    fallback = fields.Boolean(
        load_default=False, metadata={"description": "only the first permitted channel"}
    )
    subject = fields.String(required=True, validate=validate.Length(min=1, max=200))
    message = fields.String(
        required=True,
        validate=validate.Length(min=1, max=5000),
        metadata={
            "description": "goes in the email; the SMS and WhatsApp only say there is news, unless "
            "`sms_text` puts this text in it"
        },
    )
    sms_text = fields.Boolean(
        load_default=False,
        metadata={
            "description": "the SMS carries `message` itself (at most 320 characters), after "
            "the health-detail screen: a health word, a dose, a price or a procedure's name "
            "is refused with 422 naming it"
        },
    )


class OutboundSummarySchema(Schema):
    """What an agency may see: that and how a message went, never its body or address."""

    id = fields.Integer()
    kind = fields.String()
    audience = fields.String()
    channel = fields.String()
    status = fields.String()
    suppressed_reason = fields.String(allow_none=True)
    created_at = fields.DateTime()
    sent_at = fields.DateTime(allow_none=True)
    delivered_at = fields.DateTime(allow_none=True)


class OutboundSchema(OutboundSummarySchema):
    to_address = fields.String()
    language = fields.String()
    subject = fields.String(allow_none=True)
    body_text = fields.String()
    segments = fields.Integer(allow_none=True)
    attempts = fields.Integer()
    next_attempt_at = fields.DateTime()
    provider_id = fields.String(allow_none=True)
    provider_status = fields.String(allow_none=True)
    error_code = fields.String(allow_none=True)
    error_message = fields.String(allow_none=True)
    rule_code = fields.String(allow_none=True)
    content_sid = fields.String(
        allow_none=True,
        metadata={"description": "WhatsApp: the approved template it went as (none: free text)"},
    )


class InboundSchema(Schema):
    id = fields.Integer()
    from_address = fields.String()
    channel = fields.String(metadata={"description": "sms or whatsapp"})
    body = fields.String()
    classification = fields.String()
    received_at = fields.DateTime()


class TimelineSchema(Schema):
    outbound = fields.List(fields.Nested(OutboundSchema))
    inbound = fields.List(fields.Nested(InboundSchema))


class DeliverySummarySchema(Schema):
    counts = fields.Dict(keys=fields.String(), values=fields.Integer())
    messages = fields.List(fields.Nested(OutboundSummarySchema))
