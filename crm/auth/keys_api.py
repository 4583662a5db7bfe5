"""An agency's own API keys: list, create, rotate with an overlap, revoke.

The tenant is the calling key's agency: another agency's key is a 404. A new secret is in
the one response that made it; the Idempotency-Key store keeps that response without the
secret, so a replay says the secret is not shown again instead of showing it.
"""

from __future__ import annotations

import json

from flask import request
from marshmallow import Schema, fields, validate

from crm.agencies.queries import agency_by_id
from crm.auth import operations as keys
from crm.auth.guards import agency_only, caller_scope, current_actor
from crm.auth.models import AgencyApiKey
from crm.core import audit
from crm.core.blueprint import Blueprint
from crm.core.idempotency import idempotent
from crm.core.schemas import Args

blp = Blueprint("keys", __name__, description="The calling agency's own API keys")

NOT_SHOWN_AGAIN = "The secret was shown only on the first response; it is not stored."
SELF_REVOKED = "This is the key this request was made with: it no longer works."


class KeyCreateArgs(Args):
    label = fields.String(load_default="", validate=validate.Length(max=100))


class KeySchema(Schema):
    id = fields.Integer()
    prefix = fields.String(metadata={"example": "crm_ak_1a2b3c4d"})
    label = fields.String()
    state = fields.Method(
        "_state", metadata={"description": "active, expiring (rotated), expired or revoked"}
    )
    created_at = fields.DateTime()
    last_used_at = fields.DateTime(allow_none=True)
    expires_at = fields.DateTime(
        allow_none=True, metadata={"description": "set by a rotation: works until then"}
    )
    revoked_at = fields.DateTime(allow_none=True)

    def _state(self, key) -> str:
        return keys.key_state(key)


class KeyListSchema(Schema):
    items = fields.List(fields.Nested(KeySchema))


class IssuedKeySchema(KeySchema):
    secret = fields.String(
        allow_none=True,
        metadata={"description": "the whole key, in this response only (null on a replay)"},
    )
    note = fields.String(allow_none=True)


class RotationSchema(Schema):
    key = fields.Nested(IssuedKeySchema, metadata={"description": "the new key"})
    previous = fields.Nested(
        KeySchema, metadata={"description": "the old key: it works until its expires_at"}
    )


class RevokedKeySchema(KeySchema):
    note = fields.String(allow_none=True, metadata={"description": "set when a key revoked itself"})


def _without_secret(body: str) -> str:
    """The response as kept for an Idempotency-Key replay: the secret replaced by a note."""
    document = json.loads(body)
    issued = document.get("key", document)
    issued["secret"], issued["note"] = None, NOT_SHOWN_AGAIN
    return json.dumps(document)


class _Shown:
    """A key as answered, with what this one response adds (its secret, a note)."""

    def __init__(self, key: AgencyApiKey, **extra: str | None) -> None:
        self._key = key
        self.__dict__.update(extra)

    def __getattr__(self, name: str):
        return getattr(self._key, name)


def calling_prefix() -> str:
    _, _, secret = request.headers.get("Authorization", "").partition(" ")
    return keys.public_part(secret.strip())


@blp.get("/keys")
@agency_only
@blp.response(200, KeyListSchema)
def list_keys():
    """The agency's keys, newest first: prefix, label, dates and state, never a secret."""
    actor = current_actor()
    audit.record(actor, "agency_key.list", agency_id=actor.agency_id)
    return {"items": keys.keys_of_agency(actor.agency_id)}


@blp.post("/keys")
@idempotent(caller_scope, stored_body=_without_secret)
@agency_only
@blp.arguments(KeyCreateArgs)
@blp.response(201, IssuedKeySchema)
def create_key(args):
    """A new key for the calling agency; `secret` is in this response only."""
    actor = current_actor()
    issued = keys.issue_agency_key(agency_by_id(actor.agency_id), args["label"], actor)
    return _Shown(keys.agency_key_of(actor.agency_id, issued.id), secret=issued.secret, note=None)


@blp.post("/keys/<int:key_id>/rotate")
@idempotent(caller_scope, stored_body=_without_secret)
@agency_only
@blp.response(201, RotationSchema)
def rotate_key(key_id: int):
    """A successor for the key; the old one keeps working until its `expires_at`
    (CRM_API_KEY_ROTATION_OVERLAP_HOURS). A revoked, expired or already rotated key: 409."""
    actor = current_actor()
    rotation = keys.rotate_agency_key(
        keys.agency_key_of(actor.agency_id, key_id, for_update=True), actor
    )
    new_key = keys.agency_key_of(actor.agency_id, rotation.issued.id)
    shown = _Shown(new_key, secret=rotation.issued.secret, note=None)
    return {"key": shown, "previous": rotation.old}


@blp.delete("/keys/<int:key_id>")
@idempotent(caller_scope)
@agency_only
@blp.response(200, RevokedKeySchema)
def revoke_key(key_id: int):
    """Revoke the key at once (again: the same answer). Revoking the key this request is
    made with is allowed: the answer says so, and the next request with it is 401."""
    actor = current_actor()
    key = keys.agency_key_of(actor.agency_id, key_id, for_update=True)
    keys.revoke_agency_key(key.prefix, actor, agency_id=actor.agency_id)
    note = SELF_REVOKED if key.prefix == calling_prefix() else None
    return _Shown(key, note=note)
