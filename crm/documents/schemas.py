from __future__ import annotations

from marshmallow import Schema, fields, validate

from crm.core.schemas import Args, QueryArgs
from crm.documents.models import DOCUMENT_KINDS


class UploadArgs(QueryArgs):
    kind = fields.String(required=True, validate=validate.OneOf(DOCUMENT_KINDS))


class UploadFileArgs(Args):
    file = fields.Raw(
        required=True,
        metadata={
            "type": "string",
            "format": "binary",
            "description": "DICOM, ZIP of DICOM, PDF, JPEG or PNG",
        },
    )


class DocumentSchema(Schema):
    id = fields.Integer()
    referral_id = fields.Integer()
    kind = fields.String()
    content_type = fields.String()
    filename = fields.String()
    size_bytes = fields.Integer()
    sha256 = fields.String()
    dicom_metadata = fields.Dict(data_key="dicom")
    identity_mismatch = fields.Boolean()
    mismatch_detail = fields.String(allow_none=True)
    uploaded_by = fields.String(attribute="uploaded_by_label")
    created_at = fields.DateTime()
