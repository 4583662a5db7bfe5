"""Patient input and output schemas. Input schemas name only what a caller may set."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, post_load, validate, validates_schema

from crm.core.schemas import Args
from crm.patients import validation
from crm.patients.fields import Country, Email, Language, Phone, TimeZone
from crm.patients.models import CHANNELS, SEXES

NAME = validate.Length(min=1, max=100)


class ConsentArgs(Args):
    sms = fields.Boolean()
    email = fields.Boolean()
    whatsapp = fields.Boolean(
        metadata={"description": "WhatsApp messages to the patient's phone number"}
    )
    source = fields.String(
        validate=validate.Length(min=1, max=100),
        metadata={"description": "How consent was obtained, e.g. 'signed intake form'"},
    )


class ContactArgs(Args):
    phone = Phone(
        allow_none=True,
        validate=validate.Length(max=32),
        metadata={"example": "+905321234567", "description": "E.164, or national with country"},
    )
    email = Email(allow_none=True, validate=validate.Length(max=320))
    language = Language(metadata={"example": "de", "description": "BCP 47 language tag"})
    time_zone = TimeZone(metadata={"example": "Europe/Berlin", "description": "IANA time zone"})
    consents = fields.Nested(ConsentArgs)

    @post_load
    def phone_in_e164(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        """A national number is read in the country given here; an update without one
        leaves it for the operation, which knows the patient's country."""
        phone = data.get("phone")
        if phone and not phone.startswith("+") and "country" in data:
            try:
                data["phone"] = validation.normalise_phone(phone, data.get("country"))
            except ValidationError as exc:
                raise ValidationError({"phone": exc.messages}) from exc
        return data


class PatientArgs(ContactArgs):
    given_name = fields.String(required=True, validate=NAME)
    family_name = fields.String(required=True, validate=NAME)
    date_of_birth = fields.Date(validate=validation.check_date_of_birth, allow_none=True)
    sex = fields.String(load_default="unknown", validate=validate.OneOf(SEXES))
    country = Country(required=True, metadata={"example": "DE"})
    language = Language(load_default="en", metadata={"example": "de"})
    time_zone = TimeZone(required=True, metadata={"example": "Europe/Berlin"})

    @validates_schema
    def reachable(self, data: dict[str, Any], **_: Any) -> None:
        if not data.get("phone") and not data.get("email"):
            raise ValidationError("give a phone number or an email address", "phone")


class ConsentSchema(Schema):
    channel = fields.String(validate=validate.OneOf(CHANNELS))
    granted = fields.Boolean()
    recorded_at = fields.DateTime()
    source = fields.String()


class PatientSchema(Schema):
    id = fields.Integer()
    given_name = fields.String()
    family_name = fields.String()
    date_of_birth = fields.Date(allow_none=True)
    sex = fields.String()
    country = fields.String()
    phone = fields.String(allow_none=True)
    email = fields.String(allow_none=True)
    language = fields.String()
    time_zone = fields.String()
    consents = fields.List(fields.Nested(ConsentSchema))
