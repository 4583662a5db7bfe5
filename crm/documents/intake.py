"""Taking an uploaded file from a request: the one way in, whoever sends it.

The partner API (`POST /api/v1/referrals/{id}/documents`) and the patient's page
(`POST /p/<token>/documents`) both call these two functions, so a patient's upload goes
through exactly the same streaming, limits, sniffing, ZIP checks, storage, audit and
pipeline move as an agency's:

- `expect_upload()` before anything reads the body: the request may be as large as the
  largest document (a declared Content-Length beyond it is 413 before a byte is read;
  the streaming temp file refuses past it as the bytes arrive);
- `take_upload(...)` once the caller has checked who may add to the referral (and
  locked it): the streamed file part becomes a document (`operations.store_document`).
"""

from __future__ import annotations

from flask import request
from werkzeug.datastructures import FileStorage

from crm.core.actors import Actor
from crm.core.errors import ValidationFailed
from crm.documents import operations
from crm.documents.models import Document
from crm.documents.upload import HashingTempFile, largest_upload
from crm.referrals.models import Referral

MULTIPART_FRAMING = 2**20  # room for the boundaries and the other fields


def expect_upload() -> None:
    """Uploads may be far larger than a JSON body; the per-kind limit is checked after."""
    request.max_content_length = largest_upload() + MULTIPART_FRAMING


def take_upload(referral: Referral, kind: str, part: FileStorage | None, actor: Actor) -> Document:
    """The request's streamed file part stored as a document of `referral` by `actor`."""
    if part is None or not isinstance(part.stream, HashingTempFile):
        raise ValidationFailed({"file": "send the file as a multipart file part"})
    return operations.store_document(referral, kind, part.filename, part.stream.received(), actor)
