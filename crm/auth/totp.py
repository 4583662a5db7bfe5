"""The TOTP second factor (RFC 6238, pyotp): enrolment and checking a code.

A code is accepted for the current 30-second step and one either side (clock drift),
and never twice: the step last accepted is stored, and only a later one passes.
"""

from __future__ import annotations

import hmac

import pyotp
import segno
from flask import current_app

from crm.auth.models import StaffUser
from crm.core import audit
from crm.core.db import utcnow
from crm.core.errors import ValidationFailed
from crm.extensions import db

SECOND_FACTOR_ROLES = frozenset({"admin", "manager"})
DRIFT_STEPS = 1


def required_for(user: StaffUser) -> bool:
    return user.role in SECOND_FACTOR_ROLES


def enrolled(user: StaffUser) -> bool:
    return user.totp_enabled_at is not None and bool(user.totp_secret)


def begin_enrolment(user: StaffUser) -> str:
    """The secret to enrol (a new one unless enrolment already began and is unconfirmed)."""
    if not user.totp_secret or enrolled(user):
        user.totp_secret = pyotp.random_base32()
        user.totp_enabled_at = None
        user.totp_last_step = None
        db.session.flush()
    return user.totp_secret


def provisioning_uri(user: StaffUser) -> str:
    issuer = current_app.config["CRM"]["HOSPITAL_NAME"]
    return pyotp.TOTP(user.totp_secret or "").provisioning_uri(name=user.email, issuer_name=issuer)


def qr_svg(uri: str) -> str:
    """The otpauth URI as an inline SVG QR code (segno, pure Python)."""
    return segno.make(uri, error="m").svg_inline(scale=4, dark="#111", light="#fff")


def check_code(user: StaffUser, code: str) -> bool:
    """Whether `code` is right now for this user's secret; a used step never passes again."""
    digits = "".join(code.split())
    if not user.totp_secret or len(digits) != 6 or not digits.isdigit():
        return False
    totp = pyotp.TOTP(user.totp_secret)
    now_step = totp.timecode(utcnow())
    for step in range(now_step - DRIFT_STEPS, now_step + DRIFT_STEPS + 1):
        if hmac.compare_digest(totp.generate_otp(step), digits):
            if user.totp_last_step is not None and step <= user.totp_last_step:
                return False
            user.totp_last_step = step
            db.session.flush()
            return True
    return False


def confirm_enrolment(user: StaffUser, code: str, actor) -> None:
    if not check_code(user, code):
        raise ValidationFailed({"code": "that code is not right; try the newest one"})
    user.totp_enabled_at = utcnow()
    audit.record(actor, "staff.totp_enrolled", staff_user_id=user.id)
    db.session.flush()


def reset(user: StaffUser, actor) -> None:
    """Forget the second factor (the next sign-in enrols again where the role needs it)."""
    user.totp_secret = None
    user.totp_enabled_at = None
    user.totp_last_step = None
    audit.record(actor, "staff.totp_reset", staff_user_id=user.id)
    db.session.flush()
