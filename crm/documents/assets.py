"""The browser side of the resumable upload (tus 1.0.0, `crm/documents/tus.py`), served
from one place for every page that uploads: `static/resumable.js`, the chunk loop the
agency panel and the patient portal share (each page's own script keeps its words).

Served by the app (no CDN) from this site, so the pages' `script-src 'self'` allows it, at
`/assets/documents/`, outside the portal's per-address limit: it is the same file for
everyone. Its address carries a digest of the file (`?v=`, added by `url_for`): that
address is cached for a year and never asked again, and a deployed change is a new
address. Asked without the current digest, it is revalidated every time (ETag).
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, request

assets = Blueprint(
    "document_assets", __name__, static_folder="static", static_url_path="/assets/documents"
)
STATIC = Path(__file__).resolve().parent / "static"
YEAR = 365 * 24 * 3600
# A script is no document: it may load nothing, and nothing may frame it.
POLICY = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'"


@lru_cache(maxsize=16)
def _digest(path: Path, mtime_ns: int, size: int) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def version(filename: str) -> str | None:
    """A digest of the static file `filename` (None if there is none): its cache key."""
    path = (STATIC / filename).resolve()
    if not path.is_relative_to(STATIC) or not path.is_file():
        return None
    stat = path.stat()
    return _digest(path, stat.st_mtime_ns, stat.st_size)


@assets.url_defaults
def _versioned(endpoint: str, values: dict[str, Any]) -> None:
    if endpoint == "document_assets.static" and "v" not in values:
        values["v"] = version(values.get("filename", ""))


@assets.after_request
def _headers(response: Response) -> Response:
    if response.status_code in {200, 304}:
        current = version((request.view_args or {}).get("filename", ""))
        response.headers["Cache-Control"] = (
            f"public, max-age={YEAR}, immutable"
            if current and request.args.get("v") == current
            else "no-cache"
        )
    response.headers["Content-Security-Policy"] = POLICY
    response.headers["Cross-Origin-Resource-Policy"] = "same-origin"
    return response
