"""Streaming multipart uploads: file parts go straight to a temp file in the store."""

from __future__ import annotations

from pathlib import Path
from typing import IO, Any

from flask import Request, current_app

from crm.documents.storage import LocalStorage


def storage() -> LocalStorage:
    return LocalStorage(current_app.config["CRM"]["DOCUMENTS_DIR"])


class StreamingRequest(Request):
    """Werkzeug parses multipart bodies chunk by chunk; each file part is written to a
    temp file beside the store, so a 500 MB study never sits in memory."""

    def _get_file_stream(
        self,
        total_content_length: int | None,
        content_type: str | None,
        filename: str | None = None,
        content_length: int | None = None,
    ) -> IO[Any]:
        temp = storage().new_temp()
        self.environ.setdefault("crm.upload_temps", []).append(temp)
        return temp


def remove_leftover_temps(environ: dict[str, Any]) -> None:
    """A request that failed before its upload was stored leaves nothing behind."""
    for temp in environ.get("crm.upload_temps", []):
        temp.close()
        Path(temp.name).unlink(missing_ok=True)
