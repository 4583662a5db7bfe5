"""Documents on an S3-compatible object store (boto3), so several web hosts share them.

Objects are `documents/<sha256>` in CRM_S3_BUCKET, encrypted exactly as on the local disk
(the same blob format). Credentials come from boto3's standard chain (AWS_ACCESS_KEY_ID /
AWS_SECRET_ACCESS_KEY, ~/.aws, an instance role); CRM_S3_ENDPOINT_URL points it at a
non-AWS store (MinIO, Ceph, ...). Uploads of more than one part use a multipart upload,
parts of `PART_SIZE`, so a 1 GB study never sits in memory; downloads stream the body.
A new object is written with `If-None-Match: *`, so two hosts storing the same content at
once cannot overwrite each other's blob (and its data key): the second reuses the first's.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, suppress
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import boto3
from botocore.exceptions import ClientError

from crm.core.db import utcnow
from crm.documents.encryption import CHUNK_SIZE, Keyring
from crm.documents.storage import EncryptedStore, check_key

PREFIX = "documents/"
PART_SIZE = 8 * 1024 * 1024  # S3's smallest part is 5 MiB (except the last)
_MISSING = {"404", "NoSuchKey", "NotFound"}
_EXISTS = {"PreconditionFailed", "412", "ConditionalRequestConflict", "409"}


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


class _Body(AbstractContextManager):
    def __init__(self, client: Any, bucket: str, key: str) -> None:
        self.client, self.bucket, self.key = client, bucket, key
        self.body: Any = None

    def __enter__(self) -> IO[bytes]:
        try:
            self.body = self.client.get_object(Bucket=self.bucket, Key=self.key)["Body"]
        except ClientError as exc:
            if _code(exc) in _MISSING:
                raise FileNotFoundError(self.key) from exc
            raise
        return self.body

    def __exit__(self, *exc) -> None:
        if self.body is not None:
            self.body.close()


class S3Storage(EncryptedStore):
    def __init__(
        self,
        client: Any,
        bucket: str,
        tmp: str | Path,
        keyring: Keyring,
        chunk_size: int = CHUNK_SIZE,
        part_size: int = PART_SIZE,
    ) -> None:
        self.client, self.bucket = client, bucket
        self.tmp = Path(tmp)
        self.keyring, self.chunk_size, self.part_size = keyring, chunk_size, part_size

    @classmethod
    def from_settings(cls, settings: Any, keyring: Keyring) -> S3Storage:
        client = boto3.client(
            "s3",
            endpoint_url=settings["S3_ENDPOINT_URL"] or None,
            region_name=settings["S3_REGION"] or None,
        )
        return cls(client, settings["S3_BUCKET"], Path(settings["DOCUMENTS_DIR"]) / "tmp", keyring)

    def key(self, sha256: str) -> str:
        return PREFIX + check_key(sha256)

    def readiness_problem(self) -> str | None:
        """Why this store cannot take a document now (for /readyz), or None."""
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except Exception as exc:  # botocore's errors, a refused connection, bad credentials
            return f"the documents bucket {self.bucket} does not answer ({type(exc).__name__})"
        return None

    def exists(self, sha256: str) -> bool:
        return self.last_modified(sha256) is not None

    def last_modified(self, sha256: str) -> datetime | None:
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=self.key(sha256))
        except ClientError as exc:
            if _code(exc) in _MISSING:
                return None
            raise
        return head["LastModified"]

    def delete(self, sha256: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self.key(sha256))

    def blobs(self) -> Iterator[tuple[str, datetime]]:
        """(sha256, last modified) of every stored blob."""
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=PREFIX
        )
        for page in pages:
            for item in page.get("Contents", []):
                name = item["Key"].removeprefix(PREFIX)
                if len(name) == 64 and set(name) <= set("0123456789abcdef"):
                    yield name, item["LastModified"]

    def abort_stale_uploads(self, cutoff: datetime) -> int:
        """Multipart uploads a killed worker left open (their parts cost storage)."""
        listed = self.client.list_multipart_uploads(Bucket=self.bucket, Prefix=PREFIX)
        aborted = 0
        for upload in listed.get("Uploads", []):
            if upload["Initiated"] < cutoff:
                self.client.abort_multipart_upload(
                    Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                )
                aborted += 1
        return aborted

    def _raw(self, sha256: str) -> AbstractContextManager[IO[bytes]]:
        return _Body(self.client, self.bucket, self.key(sha256))

    def _touch(self, sha256: str) -> bool:
        """Copying an object onto itself renews its LastModified (the sweep's clock)."""
        key = self.key(sha256)
        try:
            self.client.copy_object(
                Bucket=self.bucket,
                Key=key,
                CopySource={"Bucket": self.bucket, "Key": key},
                MetadataDirective="REPLACE",
                Metadata={"touched": utcnow().isoformat()},
            )
        except ClientError as exc:
            if _code(exc) in _MISSING:
                return False
            raise
        return True

    def _put(self, sha256: str, pieces: Iterator[bytes], exclusive: bool) -> bool:
        key = self.key(sha256)
        condition = {"IfNoneMatch": "*"} if exclusive else {}
        buffer, upload_id, parts = bytearray(), None, []
        try:
            for piece in pieces:
                buffer += piece
                if len(buffer) >= self.part_size:
                    if upload_id is None:
                        upload_id = self.client.create_multipart_upload(
                            Bucket=self.bucket, Key=key
                        )["UploadId"]
                    parts.append(self._part(key, upload_id, len(parts) + 1, bytes(buffer)))
                    buffer.clear()
            if upload_id is None:
                self.client.put_object(Bucket=self.bucket, Key=key, Body=bytes(buffer), **condition)
                return True
            if buffer:
                parts.append(self._part(key, upload_id, len(parts) + 1, bytes(buffer)))
            self.client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=key,
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},
                **condition,
            )
            return True
        except ClientError as exc:
            if upload_id is not None:
                self._abort(key, upload_id)
            if exclusive and _code(exc) in _EXISTS:
                return False
            raise
        except BaseException:
            if upload_id is not None:
                self._abort(key, upload_id)
            raise

    def _part(self, key: str, upload_id: str, number: int, body: bytes) -> dict[str, Any]:
        etag = self.client.upload_part(
            Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=body
        )["ETag"]
        return {"PartNumber": number, "ETag": etag}

    def _abort(self, key: str, upload_id: str) -> None:
        with suppress(ClientError):  # the sweep aborts what is left
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
