"""Links we put in messages: the patient's private link and the unsubscribe link.

A private link's URL carries an itsdangerous signature over (link id, nonce). The row
behind it can be revoked or expire, which kills every copy of the link at once; a new
link is issued on the next message.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

from flask import current_app
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import select, update

from crm.core.cache import NEW_REFERRALS, transaction_notes
from crm.core.db import utcnow
from crm.extensions import db
from crm.patients.models import PatientLink

_SALT = "patient-link-v2"
_UNSUBSCRIBE_SALT = "unsubscribe-v1"
_LIVE_LINKS = "crm.live_patient_links"  # session.info: referral id -> its PatientLink


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt=_SALT)


def _active(referral_id: int) -> PatientLink | None:
    return db.session.scalar(
        select(PatientLink)
        .where(
            PatientLink.referral_id == referral_id,
            PatientLink.revoked_at.is_(None),
            PatientLink.expires_at > utcnow() + timedelta(days=7),
        )
        .order_by(PatientLink.id.desc())
        .limit(1)
    )


def _remembered(referral_id: int) -> PatientLink | None:
    """The link this session last used for the referral, if it is still live: no query
    within a transaction, one refresh by primary key after a commit."""
    link = db.session.info.get(_LIVE_LINKS, {}).get(referral_id)
    if link is None or link not in db.session or link.revoked_at is not None:
        return None
    return link if link.expires_at > utcnow() + timedelta(days=7) else None


def link_for(referral_id: int) -> PatientLink:
    """The referral's live link, or a new one (a link within a week of expiry is renewed)."""
    fresh = referral_id in transaction_notes(NEW_REFERRALS)  # no link can exist yet
    link = _remembered(referral_id) or (None if fresh else _active(referral_id))
    if link is None:
        days = current_app.config["CRM"]["PATIENT_LINK_DAYS"]
        link = PatientLink(
            referral_id=referral_id,
            nonce=secrets.token_hex(16),
            expires_at=utcnow() + timedelta(days=days),
        )
        db.session.add(link)
        db.session.flush()
    db.session.info.setdefault(_LIVE_LINKS, {})[referral_id] = link
    return link


def token_for(link: PatientLink) -> str:
    return _serializer().dumps({"l": link.id, "n": link.nonce})


def base_url() -> str:
    return current_app.config["CRM"]["PUBLIC_BASE_URL"].rstrip("/")


def url_for_referral(referral_id: int) -> str:
    return f"{base_url()}/p/{token_for(link_for(referral_id))}"


def resolve(token: str) -> PatientLink | None:
    """The live link a token names; None for a forged, revoked or expired one."""
    try:
        data = _serializer().loads(token)
    except BadSignature:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("l"), int):
        return None
    link = db.session.get(PatientLink, data["l"])
    if link is None or not secrets.compare_digest(link.nonce, str(data.get("n", ""))):
        return None
    if link.revoked_at is not None or link.expires_at <= utcnow():
        return None
    link.last_used_at = utcnow()
    return link


def revoke_all(referral_id: int) -> int:
    result = db.session.execute(
        update(PatientLink)
        .where(PatientLink.referral_id == referral_id, PatientLink.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    return result.rowcount or 0


def patient_link(referral_id: int) -> str:
    """The referral's private link, for a message."""
    return url_for_referral(referral_id)


def _unsubscribe_serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt=_UNSUBSCRIBE_SALT)


def unsubscribe_url(patient_id: int, channel: str = "email") -> str:
    token = _unsubscribe_serializer().dumps({"p": patient_id, "c": channel})
    return f"{base_url()}/unsubscribe/{token}"


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
