"""A sample trip: for the demo data and the tests (no patient's travel)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any


def sample_trip(admission: datetime) -> dict[str, Any]:
    """A trip to Istanbul for an admission at `admission` (UTC), as TripArgs takes it: the
    inbound flight leaves Frankfurt two days before and lands three hours later. Two days,
    not one: a day ahead is the local day before only in Istanbul's morning, and booking
    refuses an inbound flight landing after the local day before (crm/travel/itinerary.py)."""

    def flight(number: str, origin: str, destination: str, departs, hours: int) -> dict:
        return {
            "flight_number": number,
            "departure_airport": origin,
            "departure_time_zone": "UTC",
            "departs_at": departs.isoformat(),
            "arrival_airport": destination,
            "arrival_time_zone": "UTC",
            "arrives_at": (departs + timedelta(hours=hours)).isoformat(),
        }

    return {
        "admission_at": admission.isoformat(),
        "time_zone": "Europe/Istanbul",
        "hospital_nights": 2,
        "flights": {
            "inbound": flight("TK1588", "FRA", "IST", admission - timedelta(days=2), 3),
            "outbound": None,
        },
        "hotel": {"name": "Hotel Bosphorus", "address": "Sisli, Istanbul"},
        "transfers": "Airport pick-up by the hospital's driver",
        "visa_letter_needed": False,
    }
