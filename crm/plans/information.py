"""The information a patient reads before accepting a plan, as one text with a SHA-256.

`consent_information(...)` builds it in blocks (a heading, paragraphs, a list, facts) from
the catalogue's patient information in the patient's language and the plan (surgeon,
planned dates, inclusions, exclusions, price, deposit, validity). The page and the plan's
PDF render exactly these blocks, and `text` is those same words joined, so the hash names
the text that was shown: the page sends it back with the acceptance and `accept_plan`
builds the text again; if the plan or the catalogue changed in between, the hashes differ
and the acceptance is refused (`InformationChanged`).

Headings are gettext messages, rendered with `force_locale`, so the text in a language
is the same whatever the request's own locale.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date, datetime
from zoneinfo import ZoneInfo

from babel.dates import format_date
from babel.units import format_unit
from flask_babel import force_locale
from flask_babel import gettext as _

from crm.catalogue.information import base_language, patient_information
from crm.catalogue.models import Procedure
from crm.core.errors import Conflict
from crm.core.i18n import money_text
from crm.plans.models import TreatmentPlan


class InformationChanged(Conflict):
    code, title = "information-changed", "The plan or its information changed"


@dataclass(frozen=True)
class Block:
    heading: str
    paragraphs: tuple[str, ...] = ()
    items: tuple[str, ...] = ()
    facts: tuple[tuple[str, str], ...] = ()

    def lines(self) -> list[str]:
        return [
            self.heading,
            *self.paragraphs,
            *(f"- {item}" for item in self.items),
            *(f"{label}: {value}" for label, value in self.facts),
        ]


@dataclass(frozen=True)
class PlannedStay:
    """Known dates of the stay (a booked trip), in the zone of the hospital's city."""

    admission_at: datetime
    discharge_at: datetime
    time_zone: str


@dataclass(frozen=True)
class ShownInformation:
    """What the page says it showed: the plan version and the hash of the text."""

    version: int | None
    language: str
    sha256: str


@dataclass(frozen=True)
class ConsentInformation:
    language: str
    plan_version: int
    title: str
    intro: str
    blocks: tuple[Block, ...] = field(default_factory=tuple)

    @property
    def text(self) -> str:
        lines = [self.title, self.intro]
        for block in self.blocks:
            lines += ["", *block.lines()]
        return "\n".join(lines)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()


def money(minor: int, currency: str, language: str) -> str:
    return money_text(minor, currency, language)


def consent_information(
    plan: TreatmentPlan,
    procedure: Procedure,
    language: str,
    stay: PlannedStay | None = None,
) -> ConsentInformation:
    """The information for `plan` in `language` (a shipped gettext language)."""
    language = base_language(language)
    with force_locale(language):
        facts = patient_information(procedure, language)
        blocks = [
            Block(_("What it is"), (facts["what_it_is"],)),
            Block(_("Who it is for"), (facts["who_it_is_for"],)),
            Block(_("Anaesthesia"), (facts["anaesthesia"],)),
            Block(_("How long the operation takes"), (facts["duration"],)),
            Block(_("Time in hospital"), (facts["hospital_stay"],)),
            Block(_("Recovery after the operation"), (facts["recovery"],)),
            Block(_("Return to your usual activities"), (facts["return_to_activity"],)),
            Block(_("Risks to discuss with your surgeon"), (facts["risks"],)),
            Block(
                _("Your surgeon"),
                (_("%(surgeon)s at %(hospital)s", surgeon=plan.surgeon, hospital=plan.hospital),),
            ),
            _dates_block(procedure, language, stay),
            *_inclusions_blocks(plan),
            _price_block(plan, language),
        ]
        return ConsentInformation(
            language=language,
            plan_version=plan.version,
            title=_("About your treatment: %(procedure)s", procedure=facts["name"]),
            intro=_(
                "Please read this information about version %(version)s of your treatment "
                "plan before you accept it.",
                version=plan.version,
            ),
            blocks=tuple(blocks),
        )


def _day(moment: datetime, zone: str, language: str) -> str:
    return format_date(moment.astimezone(ZoneInfo(zone)).date(), "long", locale=language)


def _dates_block(procedure: Procedure, language: str, stay: PlannedStay | None) -> Block:
    if stay is not None:
        return Block(
            _("Planned dates"),
            facts=(
                (_("Admission to hospital"), _day(stay.admission_at, stay.time_zone, language)),
                (_("Planned discharge"), _day(stay.discharge_at, stay.time_zone, language)),
            ),
        )
    paragraphs = [_("Your exact dates are set when your travel is booked.")]
    if procedure.arrive_days_before_admission:
        arrive = format_unit(
            procedure.arrive_days_before_admission, "duration-day", locale=language
        )
        paragraphs.append(
            _("Plan to arrive %(duration)s before your admission to hospital.", duration=arrive)
        )
    if procedure.nights_in_city_after_discharge:
        nights = format_unit(
            procedure.nights_in_city_after_discharge, "duration-night", locale=language
        )
        paragraphs.append(
            _(
                "Plan to stay near the hospital for %(duration)s after you leave hospital, "
                "before you fly home.",
                duration=nights,
            )
        )
    return Block(_("Planned dates"), tuple(paragraphs))


def _inclusions_blocks(plan: TreatmentPlan) -> list[Block]:
    blocks = []
    if plan.inclusions:
        blocks.append(Block(_("Included in the price"), items=tuple(plan.inclusions)))
    if plan.exclusions:
        blocks.append(Block(_("Not included"), items=tuple(plan.exclusions)))
    return blocks


def _price_block(plan: TreatmentPlan, language: str) -> Block:
    facts = [(_("Total price of the plan"), money(plan.total_minor, plan.currency, language))]
    if plan.deposit_minor:
        facts.append(
            (_("Deposit (part of the total)"), money(plan.deposit_minor, plan.currency, language))
        )
    facts.append(
        (_("This offer is valid until"), format_date(plan.valid_until, "long", locale=language))
    )
    return Block(_("Price, deposit and validity"), facts=tuple(facts))


def day_in(value: date, language: str) -> str:
    return format_date(value, "long", locale=language)
