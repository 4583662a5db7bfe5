"""Short links for SMS: `/s/<code>` stands for the patient's private link.

The private link's signed token is about ninety characters, which makes an Arabic or
Russian SMS three or four segments. An SMS carries a short code instead: twelve letters
and digits drawn by `secrets` (62^12, about 71 bits, against the 64 we require), one code
per message. Only the code's SHA-256 is stored, with the link it stands for: the code in
clear exists only in the message. A code lives as long as its link (`expires_at` is the
link's) and dies with it: revoking the private link kills every short code for it, and
an unknown, expired or revoked code is refused exactly like a wrong token.

Letters and digits only: no `-` or `_`, which some phones leave out of the tappable part
of a link when they end it.
"""

from __future__ import annotations

import hashlib
import secrets
import string

from sqlalchemy import select

from crm.core.db import utcnow
from crm.extensions import db
from crm.patients.links import base_url, link_for
from crm.patients.models import PatientLink, PatientShortLink

ALPHABET = string.ascii_letters + string.digits
CODE_LENGTH = 12
PATH = "/s/"


def code_hash(code: str) -> str:
    return hashlib.sha256(code.encode("ascii")).hexdigest()


def new_code() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))


def issue(referral_id: int, message_key: str | None = None) -> str:
    """A new short code for the referral's live private link; the clear code is returned
    once and never stored. `message_key` ties it to the one message that carries it."""
    link = link_for(referral_id)
    code = new_code()
    db.session.add(
        PatientShortLink(
            link_id=link.id,
            code_hash=code_hash(code),
            message_key=message_key,
            expires_at=link.expires_at,
        )
    )
    return code


def short_url(referral_id: int, message_key: str | None = None) -> str:
    """The short link an SMS carries: `<CRM_PUBLIC_BASE_URL>/s/<code>`."""
    return f"{base_url()}{PATH}{issue(referral_id, message_key)}"


def _well_formed(code: str) -> bool:
    return len(code) == CODE_LENGTH and all(ch in ALPHABET for ch in code)


def resolve(code: str) -> PatientLink | None:
    """The live private link a code stands for; None for an unknown, expired or revoked one."""
    if not _well_formed(code):
        return None
    short = db.session.scalar(
        select(PatientShortLink).where(PatientShortLink.code_hash == code_hash(code))
    )
    now = utcnow()
    if short is None or short.expires_at <= now:
        return None
    link = short.link
    if link.revoked_at is not None or link.expires_at <= now:
        return None
    short.last_used_at = link.last_used_at = now
    return link
