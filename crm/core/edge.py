"""What every request must satisfy before a view sees it: ids the columns can hold, JSON
of bounded depth, text the database can store, and no query parameter nobody reads.

One check per class of input, at the edge, for every entry point (API, webhooks, portal
forms); multipart fields are checked where they are parsed (`crm.core.blueprint`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from typing import Any

from flask import current_app, request
from werkzeug.exceptions import BadRequest
from werkzeug.routing import IntegerConverter

from crm.core.errors import ValidationFailed

MAX_ID = 2**31 - 1  # every id is an `integer` column
MIN_INT, MAX_INT = -(2**31), 2**31 - 1  # and so is every other integer we store
MAX_JSON_DEPTH = 64
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
_URLENCODED = "application/x-www-form-urlencoded"

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_JSON_BRACKET = re.compile(rb"[\[\]{}]")
# Query parameters any endpoint may receive and ignore: none so far. A cache-buster or a
# tracking parameter a client adds would go here, with the reason.
HARMLESS_QUERY_PARAMETERS: frozenset[str] = frozenset()


def digits_up_to(limit: int) -> str:
    """A regex for the decimal numbers 1..limit, no leading zeros: a route whose id is out
    of range then matches no rule at all (a converter's refusal alone would make werkzeug
    answer 405 where the same path takes another method)."""
    text, alternatives = str(limit), []
    if len(text) > 1:
        alternatives.append(f"[1-9][0-9]{{0,{len(text) - 2}}}")
    for position, digit in enumerate(text):
        lowest = 1 if position == 0 else 0
        if int(digit) > lowest:
            rest = len(text) - position - 1
            alternatives.append(f"{text[:position]}[{lowest}-{int(digit) - 1}][0-9]{{{rest}}}")
    alternatives.append(text)
    return "(?:" + "|".join(alternatives) + ")"


class IdConverter(IntegerConverter):
    """`<int:...>` in every route: 1..2^31-1, so an id no row can have is a 404 at routing."""

    regex = digits_up_to(MAX_ID)

    def __init__(self, map: Any, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("min", 1)
        kwargs.setdefault("max", MAX_ID)
        super().__init__(map, *args, **kwargs)


def id_parameter_schema(converter: IdConverter) -> dict[str, Any]:
    return {
        "type": "integer",
        "format": "int32",
        "minimum": converter.min,
        "maximum": converter.max,
    }


def unstorable_reason(text: str) -> str | None:
    """Why PostgreSQL text cannot hold this string, or None if it can."""
    found = _UNSTORABLE.search(text)
    if found is None:
        return None
    if found.group() == "\x00":
        return "must not contain NUL (U+0000) characters"
    return f"contains a lone surrogate (U+{ord(found.group()):04X}), which is not text"


def text_problems(value: Any, root: str = "") -> list[dict[str, str]]:
    """Every string (and key) in a JSON-like value that cannot be stored, by its path.

    Iterative, so a deeply nested value cannot exhaust the stack."""
    problems: list[dict[str, str]] = []
    stack: list[tuple[str, Any]] = [(root, value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, str):
            reason = unstorable_reason(item)
            if reason:
                problems.append({"field": path or "body", "reason": reason})
        elif isinstance(item, dict):
            for key, child in item.items():
                child_path = f"{path}.{key}" if path else str(key)
                key_reason = unstorable_reason(str(key))
                if key_reason:
                    problems.append({"field": path or "body", "reason": f"a key {key_reason}"})
                    continue
                stack.append((child_path, child))
        elif isinstance(item, list):
            stack.extend((f"{path}[{index}]", child) for index, child in enumerate(item))
    return sorted(problems, key=lambda problem: problem["field"])


def multi_items_problems(items: Iterable[tuple[str, str]], prefix: str) -> list[dict[str, str]]:
    return [
        {"field": f"{prefix}{name}", "reason": reason}
        for name, value in items
        for reason in (unstorable_reason(name) or unstorable_reason(value),)
        if reason
    ]


def json_depth_exceeds(raw: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether JSON text nests deeper than `limit`, found without parsing (or recursing)."""
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return False
    depth = 0
    for match in _JSON_BRACKET.finditer(_JSON_STRING.sub(b'""', raw)):
        depth += 1 if match.group() in (b"[", b"{") else -1
        if depth > limit:
            return True
    return False


def _view_locations() -> frozenset[str] | None:
    """The argument locations the matched view declares, or None for a non-API view."""
    endpoint = request.url_rule.endpoint if request.url_rule else None
    view = current_app.view_functions.get(endpoint) if endpoint else None
    if view is None or not hasattr(view, "_apidoc"):
        return None
    parameters = view._apidoc.get("arguments", {}).get("parameters", [])
    return frozenset(parameter["in"] for parameter in parameters)


def _check_json_body() -> list[dict[str, str]]:
    if request.method not in BODY_METHODS or not request.is_json:
        return []
    raw = request.get_data(cache=True)
    if not raw:
        return []
    if json_depth_exceeds(raw):
        raise BadRequest(f"The JSON body nests deeper than {MAX_JSON_DEPTH} levels.")
    try:
        body = request.get_json()
    except BadRequest as exc:
        raise BadRequest(_json_error(_decode_error(exc))) from None
    return text_problems(body)


def _decode_error(exc: BaseException) -> BaseException | None:
    """The ValueError behind Flask's BadRequest (it wraps werkzeug's, which wraps it)."""
    seen: BaseException | None = exc
    while seen is not None and not isinstance(seen, ValueError):
        seen = seen.__cause__ or seen.__context__
    return seen


def _json_error(cause: BaseException | None) -> str:
    if isinstance(cause, UnicodeDecodeError):
        return "The body is not valid JSON: it is not UTF-8 text."
    if isinstance(cause, json.JSONDecodeError):
        where = f"line {cause.lineno} column {cause.colno}"
        return f"The body is not valid JSON: {cause.msg.lower()} at {where}."
    return "The body is not valid JSON."


def _check_form() -> list[dict[str, str]]:
    """URL-encoded forms (the portal, Twilio's webhooks); multipart waits for its parser."""
    if (
        request.method not in BODY_METHODS
        or request.mimetype != "application/x-www-form-urlencoded"
    ):
        return []
    return multi_items_problems(request.form.items(multi=True), "")


def _check_query_and_path() -> list[dict[str, str]]:
    problems = multi_items_problems(request.args.items(multi=True), "query.")
    for name, value in (request.view_args or {}).items():
        if isinstance(value, str) and (reason := unstorable_reason(value)):
            problems.append({"field": f"path.{name}", "reason": reason})
    return problems


def _unknown_query_parameters(locations: frozenset[str] | None) -> Iterator[dict[str, str]]:
    """A view with no query schema takes no query parameters (one with a schema refuses
    unknown ones itself)."""
    if locations is None or "query" in locations:
        return
    for name in sorted(set(request.args) - HARMLESS_QUERY_PARAMETERS):
        yield {"field": f"query.{name}", "reason": "unknown parameter: this endpoint takes none"}


def check_request() -> None:
    """before_request: a 400 for JSON too deep or broken, a 422 naming each bad field."""
    problems = _check_query_and_path()
    if request.path.startswith("/api/"):
        problems.extend(_unknown_query_parameters(_view_locations()))
    problems.extend(_check_json_body())
    problems.extend(_check_form())
    if problems:
        raise ValidationFailed(problems)
