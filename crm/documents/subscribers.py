"""Documents own one fact the pipeline's guards read: an MRI study is on file."""

from __future__ import annotations

from typing import TYPE_CHECKING

from crm.documents.queries import has_mri
from crm.referrals.stages import MRI_ON_FILE

if TYPE_CHECKING:
    from crm.features import Wiring


def register(wiring: Wiring) -> None:
    wiring.guards.switch_on(MRI_ON_FILE, has_mri)
