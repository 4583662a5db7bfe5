"""Taking an uploaded file from a request: the one way in, whoever sends it.

The partner API (`POST /api/v1/referrals/{id}/documents`) and the patient's page
(`POST /p/<token>/documents`) both call these two functions, so a patient's upload goes
through exactly the same streaming, limits, sniffing, ZIP checks, storage, audit and
pipeline move as an agency's:

- `expect_upload()` before anything reads the body: the request may be as large as the
  largest document (a declared Content-Length beyond it is 413 before a byte is read;
  the streaming temp file refuses past it as the bytes arrive);
- `take_upload(...)` once the caller has checked who may add to the referral (and
  locked it): the streamed file part, sealed as it arrived, becomes a document
  (`operations.store_sealed`, as a finished resumable upload does).
"""

from __future__ import annotations

from flask import request
from werkzeug.datastructures import FileStorage

from crm.core.actors import Actor
from crm.core.errors import ValidationFailed
from crm.documents import operations
from crm.documents.models import Document
from crm.documents.parts import SealedPart
from crm.documents.upload import SealingTempFile, largest_upload
from crm.referrals.models import Referral

MULTIPART_FRAMING = 2**20  # room for the boundaries and the other fields


def expect_upload() -> None:
    """Uploads may be far larger than a JSON body; the per-kind limit is checked after."""
    request.max_content_length = largest_upload() + MULTIPART_FRAMING


def take_upload(referral: Referral, kind: str, part: FileStorage | None, actor: Actor) -> Document:
    """The request's streamed file part stored as a document of `referral` by `actor`."""
    if part is None or not isinstance(part.stream, SealingTempFile):
        raise ValidationFailed({"file": "send the file as a multipart file part"})
    taken = part.stream.received()
    sealed = SealedPart(taken.path, taken.size, taken.header, taken.data_key)
    return operations.store_sealed(referral, kind, part.filename, sealed, taken.sha256, actor)
