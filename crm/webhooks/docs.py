"""The webhooks in the OpenAPI document: each event type's body as a component schema with
an example, and `x-webhooks` (the shape OpenAPI 3.1's `webhooks` has: one POST per event
type, its signature headers, its body), since the document is OpenAPI 3.0.3, which has no
`webhooks` key (README: "Events and payloads" says why it stays 3.0.3)."""

from __future__ import annotations

from typing import Any

from crm.webhooks.catalogue import EVENT_TYPES, PAYLOAD_VERSION

STRING = {"type": "string"}
NULLABLE_STRING = {"type": "string", "nullable": True}
DATE_TIME = {"type": "string", "format": "date-time"}
INTEGER = {"type": "integer"}

REFERRAL = {
    "type": "object",
    "description": "The referral, as the API shows it to its agency; never the patient's "
    "contact details or clinical text.",
    "properties": {
        "id": {**INTEGER, "example": 13},
        "reference": {**STRING, "example": "R-000013"},
        "agency_reference": {**NULLABLE_STRING, "example": "BMT-1042"},
        "attribution": {
            "type": "string",
            "nullable": True,
            "enum": ["attributed", "already_in_care", None],
            "description": "`already_in_care`: the patient is already in care at the "
            "hospital (through another referral); such a referral's agency gets only "
            "`referral.stage_changed`",
        },
    },
    "required": ["id", "reference", "agency_reference", "attribution"],
}
EXAMPLE_REFERRAL = {
    "id": 13,
    "reference": "R-000013",
    "agency_reference": "BMT-1042",
    "attribution": "attributed",
}
PLAN = {
    "type": "object",
    "properties": {
        "id": INTEGER,
        "version": INTEGER,
        "total_minor": {**INTEGER, "description": "integer minor units (cents)"},
        "deposit_minor": INTEGER,
        "currency": {**STRING, "description": "ISO 4217"},
        "valid_until": {"type": "string", "format": "date"},
    },
}
EXAMPLE_PLAN = {
    "id": 7,
    "version": 2,
    "total_minor": 850000,
    "deposit_minor": 100000,
    "currency": "EUR",
    "valid_until": "2026-04-30",
}


def _data(properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {"referral": {"$ref": "#/components/schemas/WebhookReferral"}, **properties},
        "required": ["referral", *properties],
    }


# event type -> (the `data` schema's properties, an example `data`)
DATA: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "referral.stage_changed": (
        {
            "from_stage": NULLABLE_STRING,
            "to_stage": STRING,
            "stage_entered_at": DATE_TIME,
            "reason": {**NULLABLE_STRING, "description": "the lost reason's code, on `lost`"},
        },
        {
            "from_stage": "enquiry",
            "to_stage": "awaiting_mri",
            "stage_entered_at": "2026-03-01T09:30:00Z",
            "reason": None,
        },
    ),
    "referral.attribution_changed": (
        {"changed_at": DATE_TIME},
        {"changed_at": "2026-03-02T10:00:00Z"},
    ),
    "review.decided": (
        {
            "decision": {
                "type": "string",
                "enum": ["candidate", "not_a_candidate", "need_more_information"],
            },
            "decided_at": DATE_TIME,
        },
        {"decision": "candidate", "decided_at": "2026-03-03T15:00:00Z"},
    ),
    "plan.offered": (
        {
            "plan": PLAN,
            "previous_version": {"type": "integer", "nullable": True},
        },
        {"plan": EXAMPLE_PLAN, "previous_version": 1},
    ),
    "plan.accepted": (
        {"plan": PLAN, "accepted_at": DATE_TIME},
        {"plan": EXAMPLE_PLAN, "accepted_at": "2026-03-06T11:12:00Z"},
    ),
    "document.requested": (
        {
            "document": {
                **STRING,
                "description": "the kind of document the hospital waits for",
                "example": "mri_study",
            },
            "requested_at": DATE_TIME,
        },
        {"document": "mri_study", "requested_at": "2026-03-01T09:30:00Z"},
    ),
    "travel.booked": (
        {
            "created": {"type": "boolean", "description": "false: a booking changed"},
            "arrival_at": DATE_TIME,
            "departure_at": DATE_TIME,
        },
        {
            "created": True,
            "arrival_at": "2026-04-10T13:20:00Z",
            "departure_at": "2026-04-20T08:00:00Z",
        },
    ),
    "checkin.alert": (
        {
            "urgency": {"type": "string", "enum": ["urgent", "high", "moderate"]},
            "raised_at": DATE_TIME,
        },
        {"urgency": "urgent", "raised_at": "2026-05-02T07:45:00Z"},
    ),
}

SIGNATURE_HEADERS = [
    {
        "in": "header",
        "name": "webhook-id",
        "required": True,
        "schema": {"type": "string", "example": "msg_01HV3Q8ZK6S6C1M2W3X4Y5Z6A7"},
        "description": "The event's id: the same on every retry and redelivery; drop one "
        "you have already processed.",
    },
    {
        "in": "header",
        "name": "webhook-timestamp",
        "required": True,
        "schema": {"type": "string", "example": "1772357400"},
        "description": "Seconds since the epoch when this attempt was signed; refuse one "
        "more than five minutes off your clock.",
    },
    {
        "in": "header",
        "name": "webhook-signature",
        "required": True,
        "schema": {"type": "string", "example": "v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4="},
        "description": "Standard Webhooks: space-separated `v1,<base64 HMAC-SHA256>` of "
        "`{webhook-id}.{webhook-timestamp}.{body}`, one per secret in force (two during a "
        "secret rotation's overlap). Verify with the `standardwebhooks` package.",
    },
]


def schema_name(event_type: str) -> str:
    return "Webhook" + "".join(part.title() for part in event_type.replace(".", "_").split("_"))


def body_schema(event_type: str) -> dict[str, Any]:
    properties, _example = DATA[event_type]
    return {
        "type": "object",
        "description": EVENT_TYPES[event_type],
        "properties": {
            "type": {"type": "string", "enum": [event_type]},
            "version": {"type": "integer", "enum": [PAYLOAD_VERSION]},
            "timestamp": DATE_TIME,
            "data": _data(properties),
        },
        "required": ["type", "version", "timestamp", "data"],
        "example": example(event_type),
    }


def example(event_type: str) -> dict[str, Any]:
    _properties, data = DATA[event_type]
    return {
        "type": event_type,
        "version": PAYLOAD_VERSION,
        "timestamp": "2026-03-01T09:30:00Z",
        "data": {"referral": EXAMPLE_REFERRAL, **data},
    }


def _operation(event_type: str) -> dict[str, Any]:
    ref = {"$ref": f"#/components/schemas/{schema_name(event_type)}"}
    return {
        "post": {
            "summary": event_type,
            "description": EVENT_TYPES[event_type]
            + " Sent to each enabled endpoint of the referral's agency subscribed to it.",
            "parameters": SIGNATURE_HEADERS,
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": ref, "example": example(event_type)}},
            },
            "responses": {
                "2XX": {"description": "Received; any other answer (or none in time) is retried"}
            },
        }
    }


def document(spec: Any) -> None:
    """Add the payload schemas and `x-webhooks` to the app's OpenAPI document."""
    spec.components.schema("WebhookReferral", REFERRAL)
    for event_type in EVENT_TYPES:
        spec.components.schema(schema_name(event_type), body_schema(event_type))
    spec.options["x-webhooks"] = {name: _operation(name) for name in EVENT_TYPES}
