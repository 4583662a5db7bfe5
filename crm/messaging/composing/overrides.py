"""Admins' edits of message templates, kept in the database over the files' defaults.

An edit is compiled and checked like a file's template before it is saved; an SMS edit
must also pass the health-detail screen, because an SMS body is read on a lock screen.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from sqlalchemy import delete, select

from crm.catalogue.models import Procedure
from crm.core import audit
from crm.core.actors import Actor
from crm.core.cache import process_cache, watch
from crm.core.db import utcnow
from crm.core.errors import NotFound, ValidationFailed
from crm.extensions import db
from crm.messaging.composing.templates import (
    KINDS,
    TemplateCatalogue,
    TemplateError,
    default_catalogue,
    normalise_language,
)
from crm.messaging.models import TemplateOverride
from crm.patients.links import base_url
from crm.patients.short_links import PATH

watch(TemplateOverride.__tablename__)

FIELDS = ("sms", "subject", "text", "html")
# Words an SMS body may never carry, in the languages we ship (a coarse screen; the
# variable allow-list is the real guarantee).
_HEALTH_WORDS = re.compile(
    r"\b(mri|mrt|surgery|surgical|operation|diagnos\w*|disc|hernia\w*|spine|spinal|pain|"
    r"price|cost|ameliyat|fıtık|ağrı|tanı|ameliyatı|schmerz\w*|bandscheibe\w*|diagnose|"  # noqa: RUF001
    r"операц\w*|грыж\w*|бол\w*|диагноз\w*|عملية|ألم|فتق|تشخيص)\b"
    r"|[$€£₺]|\d+\s?(usd|eur|try|gbp)\b"
    # a dose: "400 mg", "2,5 ml", "10mcg", "1 tablet"; Russian мг/мл, Arabic ملغ/مل
    r"|\d+(?:[.,]\d+)?\s?(mg|mcg|µg|ml|iu|tablets?|pills?|capsules?|мг|мл|ملغ|مغ|مل)(?!\w)",
    re.IGNORECASE,
)
SAMPLE_CONTEXT: dict[str, Any] = {
    "patient_first_name": "Alex",
    "recipient_name": "Elif",
    "hospital_name": "Istanbul Spine Centre",
    "hospital_phone": "+90 212 000 00 00",
    "link": "https://crm.example/p/sample",
    "referral_ref": "R-000042",
    "procedure_name": "Microdiscectomy",
    "agency_name": "Berlin MedTravel GmbH",
    "days_waiting": 4,
    "message": "A sample message.",
    "subject": "A sample subject",
    "screened_text": "The driver is waiting at gate B.",
    "since_treatment": 14,
    "travel_date": date(2026, 3, 14),  # sample dates: a preview never reads "until None"
    "valid_until": date(2026, 3, 31),
    "unsubscribe_url": "https://crm.example/unsubscribe/sample",
    # plan_updated_patient: what changed between two versions
    "price_changed": True,
    "total_minor": 710000,
    "currency": "EUR",
    "previous_total_minor": 750000,
    "previous_currency": "EUR",
    "valid_until_changed": False,
    "previous_valid_until": None,
    # travel_in_7_days / travel_in_1_day emails: the procedure's lists, never in an SMS
    "pre_travel_checklist": ["Your passport", "Your MRI images and reports"],
    "pre_operative_instructions": ["Ask your doctor which medicines to stop, and when"],
}


SAMPLE_SHORT_CODE = "SampleCode12"  # as long as a real code (short_links.CODE_LENGTH)


def sms_sample_context() -> dict[str, Any]:
    """The sample values with the link an SMS really carries: a short link on this
    service's public address, so the preview counts the segments the patient will get."""
    return {**SAMPLE_CONTEXT, "link": f"{base_url()}{PATH}{SAMPLE_SHORT_CODE}"}


def catalogue_for(kind: str) -> TemplateCatalogue:
    """The file templates with this kind's overrides applied (usually: none), from the
    process's cache (crm/core/cache.py)."""
    return process_cache("template_overrides").get(kind, lambda: _catalogue_with_overrides(kind))


def _catalogue_with_overrides(kind: str) -> TemplateCatalogue:
    rows = db.session.execute(
        select(
            TemplateOverride.language,
            TemplateOverride.kind,
            TemplateOverride.field,
            TemplateOverride.source,
        ).where(TemplateOverride.kind == kind)
    ).all()
    catalogue = default_catalogue()
    return catalogue.with_overrides(rows) if rows else catalogue


def listing() -> list[dict[str, Any]]:
    overrides = {
        (o.language, o.kind, o.field): o for o in db.session.scalars(select(TemplateOverride))
    }
    sources = default_catalogue().sources()
    keys = sorted(set(sources) | set(overrides))
    return [
        {
            "language": language,
            "kind": kind,
            "field": field,
            "source": overrides[key].source if key in overrides else sources[key],
            "overridden": key in overrides,
            "updated_at": overrides[key].updated_at if key in overrides else None,
        }
        for key in keys
        for language, kind, field in [key]
    ]


def health_detail_in(text: str) -> str | None:
    """The first health word, dose, price or procedure name an SMS body would carry (the
    screen of SMS template edits and of coordinators' free-text SMS), or None."""
    found = _HEALTH_WORDS.search(text)
    if found:
        return found.group()
    names = [name for (name,) in db.session.execute(select(Procedure.name))]
    return next((n for n in names if n.lower() in text.lower()), None)


def _screen_sms(source: str) -> None:
    if word := health_detail_in(source):
        raise ValidationFailed(
            {"source": f"an SMS may not carry health detail or prices: it says {word!r}"}
        )


def save_override(kind: str, language: str, field: str, source: str, actor: Actor) -> dict:
    if kind not in KINDS:
        raise NotFound(f"no message kind {kind!r}")
    if field not in FIELDS:
        raise NotFound(f"no template field {field!r}")
    language = normalise_language(language)
    if field == "sms":
        _screen_sms(source)
    try:
        trial = default_catalogue().with_overrides([(language, kind, field, source)])
        trial.render(kind, "sms" if field == "sms" else "email", language, SAMPLE_CONTEXT)
    except TemplateError as exc:
        raise ValidationFailed({"source": str(exc)}) from exc
    except Exception as exc:  # a template that fails on the sample context fails for real
        raise ValidationFailed({"source": f"does not render: {exc}"}) from exc
    row = db.session.scalar(
        select(TemplateOverride).where(
            TemplateOverride.kind == kind,
            TemplateOverride.language == language,
            TemplateOverride.field == field,
        )
    ) or TemplateOverride(kind=kind, language=language, field=field)
    row.source, row.updated_by_label, row.updated_at = source, actor.label, utcnow()
    db.session.add(row)
    db.session.flush()
    audit.record(actor, "template.override", None, kind=kind, language=language, field=field)
    return preview(kind, language)


def remove_override(kind: str, language: str, field: str, actor: Actor) -> None:
    result = db.session.execute(
        delete(TemplateOverride).where(
            TemplateOverride.kind == kind,
            TemplateOverride.language == normalise_language(language),
            TemplateOverride.field == field,
        )
    )
    if not result.rowcount:
        raise NotFound("no override for this template")
    audit.record(actor, "template.revert", None, kind=kind, language=language, field=field)


def preview(kind: str, language: str) -> dict[str, Any]:
    if kind not in KINDS:
        raise NotFound(f"no message kind {kind!r}")
    catalogue = catalogue_for(kind)
    sms = catalogue.render(kind, "sms", language, sms_sample_context())
    email = catalogue.render(kind, "email", language, SAMPLE_CONTEXT)
    return {
        "kind": kind,
        "language": email.language,
        "sms": sms.text,
        "sms_segments": sms.segments,
        "sms_encoding": sms.encoding,
        "subject": email.subject,
        "text": email.text,
        "html": email.html,
    }
