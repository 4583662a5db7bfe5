"""Travel owns the facts of the stay: a trip booked, admission, discharge, departure."""

from __future__ import annotations

from typing import TYPE_CHECKING

from crm.referrals.stages import (
    ADMISSION_RECORDED,
    DEPARTURE_RECORDED,
    DISCHARGE_RECORDED,
    TRIP_BOOKED,
)
from crm.travel.queries import stay_facts

if TYPE_CHECKING:
    from crm.features import Wiring


def register(wiring: Wiring) -> None:
    for guard in (TRIP_BOOKED, ADMISSION_RECORDED, DISCHARGE_RECORDED, DEPARTURE_RECORDED):
        wiring.guards.switch_on(guard, stay_facts)
