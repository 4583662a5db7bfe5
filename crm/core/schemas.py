"""The base of every input schema, and the problem document every error is.

`Args` makes the rules every endpoint keeps hold for every field, whoever writes the
schema: an integer is taken only as an integer (7.5 is refused, never stored as 7) and
only within what its column holds; a text field without a declared length takes at
most DEFAULT_MAX_TEXT characters; an unknown field is refused; a wrong choice names the
value that was wrong.
"""

from __future__ import annotations

from marshmallow import INCLUDE, RAISE, Schema, fields, validate

MIN_INT, MAX_INT = -(2**31), 2**31 - 1  # every integer column is a 32-bit `integer`
DEFAULT_MAX_TEXT = 200  # a text field that declares no length: a code, a name, a zone

_ONE_OF_DEFAULT = validate.OneOf.default_message


class Args(Schema):
    """Input schemas derive from this (output schemas from marshmallow's Schema)."""

    class Meta:
        unknown = RAISE

    error_messages = {"unknown": "not a field this endpoint takes"}

    # JSON has numbers: an integer must be one. QueryArgs takes text, which int() reads
    # (and refuses "7.5" itself).
    integers_from_text = False

    def on_bind_field(self, field_name: str, field_obj: fields.Field) -> None:
        for field in _with_inner_fields(field_obj):
            if isinstance(field, fields.Integer):
                _bound_integer(field, strict=not self.integers_from_text)
            if isinstance(field, fields.String) and not _has_max_length(field):
                field.validators.append(validate.Length(max=DEFAULT_MAX_TEXT))
            for validator in field.validators:
                if isinstance(validator, validate.OneOf) and validator.error == _ONE_OF_DEFAULT:
                    validator.error = "{input!r} is not one of: {choices}"


def _with_inner_fields(field: fields.Field) -> list[fields.Field]:
    found, stack = [], [field]
    while stack:
        current = stack.pop()
        found.append(current)
        if isinstance(current, fields.List):
            stack.append(current.inner)
        elif isinstance(current, fields.Tuple):
            stack.extend(current.tuple_fields)
        elif isinstance(current, fields.Dict):
            stack.extend(f for f in (current.key_field, current.value_field) if f is not None)
    return found


class QueryArgs(Args):
    """A query string's (or a form's) arguments: every value arrives as text."""

    integers_from_text = True


def _has_max_length(field: fields.Field) -> bool:
    return any(isinstance(v, validate.Length) and v.max is not None for v in field.validators)


def _bound_integer(field: fields.Integer, *, strict: bool) -> None:
    field.strict = strict
    ranges = [v for v in field.validators if isinstance(v, validate.Range)]
    if not any(r.min is not None for r in ranges) or not any(r.max is not None for r in ranges):
        field.validators.append(validate.Range(min=MIN_INT, max=MAX_INT))


class FieldErrorSchema(Schema):
    field = fields.String(metadata={"example": "patient.phone"})
    reason = fields.String(metadata={"example": "not a valid phone number for its country"})


class ProblemSchema(Schema):
    """RFC 9457 problem details, as every error of this service is sent."""

    type = fields.String(metadata={"example": "https://errors.referral-crm.example/not-found"})
    title = fields.String()
    status = fields.Integer()
    detail = fields.String()
    instance = fields.String()
    errors = fields.List(
        fields.Nested(FieldErrorSchema), metadata={"description": "422: every bad field"}
    )
    field = fields.String(metadata={"description": "the one field a 409/413/415 is about"})
    guard = fields.String(metadata={"description": "409: the rule that refused a move"})
    guards = fields.List(
        fields.Dict(), metadata={"description": "409: every guard that refused, with why"}
    )
    allowed = fields.List(fields.String(), metadata={"description": "409: the moves allowed"})

    class Meta:
        # RFC 9457 3.2: a problem type may carry extension members of its own.
        unknown = INCLUDE
