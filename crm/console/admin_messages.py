"""Nudge rules and message templates. Managers read the rules and every template's
preview; admins edit one template field (the API's PUT: compiled, the SMS variable
allow-list and the health-word screen) or reset it to the shipped text (the DELETE)."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from marshmallow import ValidationError
from sqlalchemy import select

from crm.auth.guards import current_actor, role_allows
from crm.console.actions import ERROR, attempt
from crm.console.auth import staff_page
from crm.console.views import console
from crm.core.errors import ValidationFailed, flatten_marshmallow
from crm.extensions import db
from crm.messaging.composing import overrides
from crm.messaging.composing.templates import KINDS, default_catalogue
from crm.nudges import operations as nudges
from crm.nudges.models import NudgeRule
from crm.nudges.schemas import NudgeRuleUpdateArgs

RTL = frozenset({"ar"})
ENCODINGS = {"gsm7": "GSM-7 (160 characters a segment)", "ucs2": "UCS-2 (70 characters a segment)"}


def languages() -> tuple[str, ...]:
    """English first (every other language falls back to it), then the rest."""
    found = default_catalogue().languages
    return ("en", *sorted(lang for lang in found if lang != "en"))


@console.get("/admin/rules")
@staff_page("manager")
def admin_rules():
    listing = overrides.listing()
    edited = {row["kind"] for row in listing if row["overridden"]}
    return render_template(
        "console/admin/rules.html",
        rules=db.session.scalars(select(NudgeRule).order_by(NudgeRule.code)).all(),
        kinds=KINDS,
        edited=edited,
    )


@console.get("/admin/templates/<kind>")
@staff_page("manager")
def admin_template(kind: str):
    if kind not in KINDS:
        abort(404)
    return _template_page(kind)


def _template_page(kind: str, draft: tuple[str, str, str] | None = None):
    """The previews; `draft` (language, field, text) is a refused edit, shown again in its
    open form so the admin corrects it rather than typing it again."""
    sources = {
        (row["language"], row["field"]): row for row in overrides.listing() if row["kind"] == kind
    }
    return render_template(
        "console/admin/template.html",
        kind=kind,
        previews=[(lang, overrides.preview(kind, lang)) for lang in languages()],
        sources=sources,
        fields=overrides.FIELDS,
        rtl=RTL,
        encodings=ENCODINGS,
        can_change=role_allows(current_actor(), {"admin"}),
        draft=draft,
    )


def _back(kind: str, language: str):
    return redirect(url_for("console.admin_template", kind=kind, _anchor=f"lang-{language}"), 303)


@console.post("/admin/templates/<kind>/<language>/<field>")
@staff_page("admin")
def admin_save_template(kind: str, language: str, field: str):
    source = request.form.get("source", "")[:20_001]
    if not source.strip():  # as the API's schema: at least one character
        flash("Not accepted: the text is empty; to go back to the shipped text, use Reset.", ERROR)
        return _back(kind, language)
    saved = attempt(
        lambda: overrides.save_override(kind, language, field, source, current_actor()),
        done=f"Saved: the {field} of {kind} in {language} now reads as previewed below.",
    )
    if saved is None and kind in KINDS:  # refused in words: the text is kept to correct
        return _template_page(kind, draft=(language, field, source)), 422
    return _back(kind, language)


@console.post("/admin/templates/<kind>/<language>/<field>/reset")
@staff_page("admin")
def admin_reset_template(kind: str, language: str, field: str):
    attempt(
        lambda: overrides.remove_override(kind, language, field, current_actor()),
        done=f"Reset: the {field} of {kind} in {language} is the shipped text again.",
    )
    return _back(kind, language)


@console.get("/admin/rules/<code>")
@staff_page("manager")
def admin_rule(code: str):
    return render_template(
        "console/admin/rule.html",
        rule=nudges.rule_by_code(code[:64]),
        can_change=role_allows(current_actor(), {"admin"}),
    )


def _number(raw: str) -> int | str:
    """A whole number typed in a form (the API takes JSON integers); anything else is left
    as typed, for the schema to refuse in words."""
    try:
        return int(raw.strip())
    except ValueError:
        return raw


def _rule_changes(form) -> dict:
    """The form as the API's PATCH body, loaded by the same schema (refused in words)."""
    raw = {
        "offset_minutes": _number(form.get("offset_minutes", "")[:12]),
        "max_repeats": _number(form.get("max_repeats", "")[:6]),
        "repeat_every_minutes": _number(form.get("repeat_every_minutes", "")[:12]),
        "task_after_last": form.get("task_after_last", "").strip()[:300] or None,
        "active": form.get("active") == "on",
    }
    try:
        return NudgeRuleUpdateArgs().load(raw)
    except ValidationError as exc:
        raise ValidationFailed(flatten_marshmallow(exc.messages)) from exc


@console.post("/admin/rules/<code>")
@staff_page("admin")
def admin_update_rule(code: str):
    code = code[:64]
    attempt(
        lambda: nudges.update_rule(code, _rule_changes(request.form), current_actor()),
        done=f"Rule {code} changed. New timing applies to nudges scheduled from now on.",
    )
    return redirect(url_for("console.admin_rule", code=code), 303)
