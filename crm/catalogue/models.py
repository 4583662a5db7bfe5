from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, CheckConstraint, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from crm.catalogue.check_in import CheckInForm, ReviewField, review_fields_of
from crm.core.db import TimestampMixin
from crm.extensions import db

# The long per-language texts and forms: loaded when first read, not with every row that
# joins its procedure (a page of 50 referrals would decode them 50 times).
_CONTENT: dict[str, Any] = {"deferred": True, "deferred_group": "content"}


class Procedure(TimestampMixin, db.Model):
    """One row of the procedure catalogue; loaded from config/procedures.toml."""

    __tablename__ = "procedures"
    __table_args__ = (
        CheckConstraint(
            "duration_minutes_min > 0 AND duration_minutes_max >= duration_minutes_min",
            name="duration",
        ),
        CheckConstraint(
            "hospital_nights_min >= 0 AND hospital_nights_max >= hospital_nights_min",
            name="hospital_nights",
        ),
        CheckConstraint(
            "recovery_weeks_min >= 0 AND recovery_weeks_max >= recovery_weeks_min",
            name="recovery_weeks",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    specialty: Mapped[str] = mapped_column(String(100))
    summary: Mapped[str] = mapped_column(Text, default="")
    candidates: Mapped[str] = mapped_column(Text, default="")
    requires_mri: Mapped[bool] = mapped_column(default=False)
    anaesthesia: Mapped[str] = mapped_column(String(50))
    duration_minutes_min: Mapped[int]
    duration_minutes_max: Mapped[int]
    hospital_nights_min: Mapped[int]
    hospital_nights_max: Mapped[int]
    recovery_weeks_min: Mapped[int]
    recovery_weeks_max: Mapped[int]
    arrive_days_before_admission: Mapped[int] = mapped_column(default=1)
    nights_in_city_after_discharge: Mapped[int] = mapped_column(default=0)
    prerequisites: Mapped[list[str]] = mapped_column(JSON, default=list)
    typical_complaints: Mapped[list[str]] = mapped_column(JSON, default=list)
    conservative_treatments: Mapped[list[str]] = mapped_column(JSON, default=list)
    risks_discussed: Mapped[str] = mapped_column(Text, default="")
    follow_up_schedule: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list, **_CONTENT)
    # What the patient reads, per language ({"en": {"what_it_is": ...}, "de": {...}});
    # read through crm.catalogue.information, which falls back to English.
    patient_information: Mapped[dict[str, dict[str, str]]] = mapped_column(
        JSON, default=dict, **_CONTENT
    )
    pre_travel_checklist: Mapped[dict[str, list[str]]] = mapped_column(
        JSON, default=dict, **_CONTENT
    )
    pre_operative_instructions: Mapped[dict[str, list[str]]] = mapped_column(
        JSON, default=dict, **_CONTENT
    )
    # What a check-in asks and which answers alert (crm.catalogue.check_in), and the
    # specialist's procedure-specific findings: data per procedure, not code.
    check_in_questions: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list, **_CONTENT)
    check_in_rules: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list, **_CONTENT)
    review_fields: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list, **_CONTENT)
    active: Mapped[bool] = mapped_column(default=True)

    @property
    def check_in_form(self) -> CheckInForm:
        return CheckInForm.from_data(self.check_in_questions or [], self.check_in_rules or [])

    @property
    def review_field_list(self) -> tuple[ReviewField, ...]:
        return review_fields_of(self.review_fields or [])
