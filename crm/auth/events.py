"""What auth publishes: a one-time password link was issued (messaging emails it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from crm.core.events import Event

if TYPE_CHECKING:
    from crm.auth.models import StaffUser


@dataclass(frozen=True)
class PasswordLinkIssued(Event):
    """`url` carries the one-time token: it goes into the email and nowhere else."""

    user: StaffUser
    link_id: int
    purpose: str
    url: str
