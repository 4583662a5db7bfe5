"""The tus 1.0.0 protocol (https://tus.io/protocols/resumable-upload), for every door that
takes documents: core (HEAD, PATCH), creation (POST), termination (DELETE) and expiration
(`Upload-Expires`). The doors (the API, the agency panel, the patient's page) authorise
the caller and find the referral their own way, then call these.

Creation: `POST` with `Upload-Length` and `Upload-Metadata` (comma-separated `key base64`
pairs): `kind` (a document kind), `filename`, and `sha256`, the SHA-256 of the whole file
as 64 hex digits, which the end of the upload is checked against. Answer: 201 with
`Location`. Then `PATCH` to the location with `Upload-Offset` (where this chunk starts),
`Content-Type: application/offset+octet-stream` and the bytes; an offset the upload is
not at is 409 (problem+json saying the right one); `HEAD` says the offset to resume from.
The PATCH that brings the last byte also verifies the hash and stores the document: it
answers 200 (a tus client takes any 2xx) instead of 204, with the document (the API) or
where to show it (the page, the panel); a refused file (the hash, the type, the size)
answers its problem, and `HEAD` then says `Upload-Refused`.
Every request carries `Tus-Resumable: 1.0.0` (else 412), every answer too.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from email.utils import format_datetime

from flask import Response, request

from crm.core.errors import DomainError, ValidationFailed
from crm.documents import resumable, wire
from crm.documents.models import UploadSession
from crm.documents.upload import largest_upload

VERSION = "1.0.0"
EXTENSIONS = "creation,termination,expiration"
CHUNK_MEDIA_TYPE = "application/offset+octet-stream"
EXPOSED = (
    "Location, Upload-Offset, Upload-Length, Upload-Expires, Upload-Refused, Tus-Resumable, "
    "Tus-Version, Tus-Extension, Tus-Max-Size"
)


class UnsupportedVersion(DomainError):
    status, code, title = 412, "tus-version", "Send Tus-Resumable: 1.0.0"


class UploadInterrupted(DomainError):
    status, code, title = 400, "upload-interrupted", "The connection broke mid-chunk"


@dataclass(frozen=True)
class NewUpload:
    kind: str
    filename: str
    length: int
    sha256: str


def check_version() -> None:
    if request.method != "OPTIONS" and request.headers.get("Tus-Resumable") != VERSION:
        raise UnsupportedVersion(
            "this server speaks tus 1.0.0: send the header Tus-Resumable: 1.0.0",
            version=VERSION,
        )


def _integer_header(name: str) -> int:
    raw = request.headers.get(name, "")
    if not raw.isdigit() or len(raw) > 15:
        raise ValidationFailed({name: "a whole number of bytes"})
    return int(raw)


def metadata() -> dict[str, str]:
    """`Upload-Metadata`: `key base64value, key base64value`."""
    values = {}
    for item in request.headers.get("Upload-Metadata", "").split(","):
        if not (item := item.strip()):
            continue
        key, _, encoded = item.partition(" ")
        try:
            values[key] = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise ValidationFailed({f"Upload-Metadata.{key}": "not base64 of UTF-8 text"}) from exc
    return values


def new_upload() -> NewUpload:
    """What a creation request asks for."""
    check_version()
    length = _integer_header("Upload-Length")
    values = metadata()
    return NewUpload(
        kind=values.get("kind", ""),
        filename=values.get("filename", "upload"),
        length=length,
        sha256=values.get("sha256", "").strip().lower(),
    )


def headers(upload: UploadSession) -> dict[str, str]:
    answer = {
        "Tus-Resumable": VERSION,
        "Upload-Offset": str(resumable.offset_of(upload)),
        "Upload-Length": str(upload.length),
        "Upload-Expires": format_datetime(upload.expires_at, usegmt=True),
        "Cache-Control": "no-store",
    }
    if upload.status == "refused":
        answer["Upload-Refused"] = (upload.refusal or "refused")[:500].replace("\n", " ")
    return answer


def bare(status: int, answer: dict[str, str]) -> Response:
    """An answer with headers and no body (and so no Content-Type)."""
    response = Response(status=status, headers=answer)
    del response.headers["Content-Type"]
    return response


def created(upload: UploadSession, location: str) -> Response:
    response = bare(201, {**headers(upload), "Location": location})
    response.headers["Access-Control-Expose-Headers"] = EXPOSED
    return response


def status(upload: UploadSession) -> Response:
    """The answer to HEAD: where to resume (and, for a finished one, what became of it)."""
    check_version()
    response = bare(200, headers(upload))
    if upload.document_id is not None:
        response.headers["Upload-Document-Id"] = str(upload.document_id)
    return response


def options() -> Response:
    return bare(
        204,
        {
            "Tus-Resumable": VERSION,
            "Tus-Version": VERSION,
            "Tus-Extension": EXTENSIONS,
            "Tus-Max-Size": str(largest_upload()),
        },
    )


def receive(upload: UploadSession) -> int:
    """A PATCH's body appended to `upload`; returns the offset it reached."""
    check_version()
    if request.mimetype != CHUNK_MEDIA_TYPE:
        raise ValidationFailed({"Content-Type": f"send the bytes as {CHUNK_MEDIA_TYPE}"})
    offset = _integer_header("Upload-Offset")
    if request.content_length is None:
        raise ValidationFailed({"Content-Length": "required (chunked bodies are not taken)"})
    body = wire.body_source(request.environ)
    try:
        return resumable.receive(upload, offset, body, request.content_length)
    except wire.ClientWentAway as exc:
        raise UploadInterrupted(
            f"the connection broke mid-chunk ({exc}); what arrived is kept: ask HEAD for "
            "the offset and send the rest from there"
        ) from exc


def chunk_taken(upload: UploadSession) -> Response:
    """The answer to a PATCH that is not the last."""
    return bare(204, headers(upload))
