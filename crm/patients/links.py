"""Links we put in messages: the patient's private link and the unsubscribe link."""

from __future__ import annotations

from flask import current_app
from itsdangerous import BadSignature, URLSafeSerializer

_UNSUBSCRIBE_SALT = "unsubscribe-v1"


def patient_link(referral_id: int) -> str:
    """The referral's private link (revocable, expiring): see crm.portal.links."""
    from crm.portal.links import url_for_referral

    return url_for_referral(referral_id)


def _unsubscribe_serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt=_UNSUBSCRIBE_SALT)


def unsubscribe_url(patient_id: int, channel: str = "email") -> str:
    token = _unsubscribe_serializer().dumps({"p": patient_id, "c": channel})
    return f"{current_app.config['CRM']['PUBLIC_BASE_URL']}/unsubscribe/{token}"


def read_unsubscribe_token(token: str) -> tuple[int, str] | None:
    """(patient id, channel) for a token we signed; None for anything else."""
    try:
        data = _unsubscribe_serializer().loads(token)
    except BadSignature:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("p"), int):
        return None
    if data.get("c") not in {"email", "sms"}:
        return None
    return data["p"], data["c"]
