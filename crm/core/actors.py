"""Who is acting: an agency (API key), a staff user (token), a patient (link) or the system."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

ActorKind = Literal["agency", "staff", "patient", "system"]


@dataclass(frozen=True)
class Actor:
    kind: ActorKind
    id: int | None
    label: str
    role: str | None = None
    agency_id: int | None = None

    @property
    def is_agency(self) -> bool:
        return self.kind == "agency"

    @property
    def is_staff(self) -> bool:
        return self.kind == "staff"

    @property
    def scope_key(self) -> str:
        """Stable name of the caller, for per-caller state such as idempotency keys."""
        return f"{self.kind}:{self.id}"


SYSTEM = Actor("system", None, "system")
