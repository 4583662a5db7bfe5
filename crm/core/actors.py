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


def patient_actor(patient_id: int, via: str = "") -> Actor:
    """The patient acting themselves (a reply, their link, a carrier's record of their STOP);
    `via` names the door in the label ("link")."""
    return Actor("patient", patient_id, f"patient {patient_id}" + (f" ({via})" if via else ""))


SYSTEM = Actor("system", None, "system")
