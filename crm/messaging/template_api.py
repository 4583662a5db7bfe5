from __future__ import annotations

from marshmallow import Schema, fields, validate

from crm.auth.guards import current_actor, staff_only
from crm.core.blueprint import Blueprint
from crm.core.schemas import Args
from crm.messaging.composing import overrides

blp = Blueprint("message_templates", __name__, description="Message templates per language")


class TemplateFieldSchema(Schema):
    language = fields.String()
    kind = fields.String()
    field = fields.String()
    source = fields.String()
    overridden = fields.Boolean()
    updated_at = fields.DateTime(allow_none=True)


class TemplateSourceArgs(Args):
    source = fields.String(required=True, validate=validate.Length(min=1, max=20_000))


class PreviewSchema(Schema):
    kind = fields.String()
    language = fields.String()
    sms = fields.String()
    sms_segments = fields.Integer()
    sms_encoding = fields.String()
    subject = fields.String()
    text = fields.String()
    html = fields.String()


TEMPLATE = "/message-templates/<string:kind>/<string:language>"


@blp.get("/message-templates")
@staff_only("manager")
@blp.response(200, TemplateFieldSchema(many=True))
def list_templates():
    """Every template field in every language, with admins' edits marked."""
    return overrides.listing()


@blp.get(f"{TEMPLATE}/preview")
@staff_only("coordinator", "manager")
@blp.response(200, PreviewSchema)
def preview_template(kind: str, language: str):
    """The SMS and the email as a patient would get them, with sample values."""
    return overrides.preview(kind, language)


@blp.put(f"{TEMPLATE}/<string:field>")
@staff_only("admin")
@blp.arguments(TemplateSourceArgs)
@blp.response(200, PreviewSchema)
def override_template(args, kind: str, language: str, field: str):
    """Replace one field (sms, subject, text, html); checked and previewed before saving."""
    return overrides.save_override(kind, language, field, args["source"], current_actor())


@blp.delete(f"{TEMPLATE}/<string:field>")
@staff_only("admin")
@blp.response(204)
def revert_template(kind: str, language: str, field: str):
    """Go back to the shipped template for this field."""
    overrides.remove_override(kind, language, field, current_actor())
