"""flask-smorest's Blueprint with the parser every endpoint shares.

The parser refuses unknown query parameters (webargs ignores them by default, so
`?owner=mine` listed everything) and checks multipart fields and file names for text
the database cannot store: those are parsed only here, after authentication, never
earlier at the edge (an upload is streamed, and another agency's referral is a 404
before its body is read).
"""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint as _SmorestBlueprint
from webargs.flaskparser import FlaskParser

from crm.core.edge import unstorable_reason
from crm.core.errors import ValidationFailed


class Parser(FlaskParser):
    # None: the schema's own `unknown` (RAISE, see crm.core.schemas.Args) decides.
    DEFAULT_UNKNOWN_BY_LOCATION = {
        **FlaskParser.DEFAULT_UNKNOWN_BY_LOCATION,
        "query": None,
        "querystring": None,
        "files": None,
    }

    def pre_load(self, location_data: Any, *, schema: Any, req: Any, location: str) -> Any:
        if location in {"form", "files"}:
            _refuse_unstorable_parts(location_data)
        return location_data


def _refuse_unstorable_parts(parts: Any) -> None:
    problems = []
    parts = getattr(parts, "data", parts)  # webargs' MultiDictProxy wraps the MultiDict
    for name, value in parts.items(multi=True):
        text = value if isinstance(value, str) else getattr(value, "filename", None) or ""
        reason = unstorable_reason(name) or unstorable_reason(text)
        if reason:
            problems.append({"field": name, "reason": reason})
    if problems:
        raise ValidationFailed(problems)


class Blueprint(_SmorestBlueprint):
    ARGUMENTS_PARSER = Parser()
