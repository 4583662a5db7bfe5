"""Message templates as data: one TOML file per language in ``config/message_templates``.

Why one file per language: a translator owns one file and sees every message in
context; a kind or field missing from a language falls back to English field by
field, so a new language can ship partly translated; English (``en.toml``) must be
complete and is checked at load time.

Each kind has ``sms`` and ``subject``/``text``/optional ``html`` (email). Templates
are Jinja2 in a :class:`SandboxedEnvironment` with :class:`StrictUndefined` (a
missing variable is an error, not an empty string); HTML is autoescaped. When a
kind has no ``html`` the HTML part is made from the text (paragraphs, the link
clickable). Either way it is wrapped in one layout carrying ``lang``/``dir`` and
the unsubscribe footer.

SMS bodies carry no health detail (nor do WhatsApp messages, whose free text is the
``sms`` field rendered the same way): an SMS template may reference only
:data:`SMS_VARIABLES` (checked when loading), and only those keys of the context
are given to it, so a procedure, diagnosis or price cannot reach an SMS body.
"""

from __future__ import annotations

import copy
import dataclasses
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any

from babel.dates import format_date
from babel.numbers import format_currency, get_currency_precision
from babel.units import format_unit
from jinja2 import DictLoader, StrictUndefined, Template, TemplateSyntaxError, meta, pass_context
from jinja2.runtime import Context
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import Markup, escape

from crm.messaging.composing.segments import analyse

KINDS = (
    "enquiry_received_patient",
    "enquiry_received_coordinator",
    "mri_reminder",
    "mri_review_overdue",
    "plan_offered_patient",
    "plan_updated_patient",
    "plan_unanswered_patient",
    "plan_unanswered_agency",
    "travel_in_7_days",
    "travel_in_1_day",
    "follow_up_checkin",
    "help_reply",
    "ad_hoc",
    "mri_uploaded_specialist",
    "review_outcome_agency",
    "more_information_needed_patient",
    "plan_offered_agency",
    "plan_accepted_coordinator",
    "travel_booked_patient",
    "follow_up_alert_coordinator",
    "staff_password_link",
    "mri_requested_patient",
    "conversation_answer",
    "free_text",
    "webhook_disabled_agency",
    "agency_message_agency",
)
CHANNELS = ("sms", "email", "whatsapp")
FIELDS = ("sms", "subject", "text", "html")
REQUIRED_FIELDS = ("sms", "subject", "text")
SMS_VARIABLES = frozenset(
    {"patient_first_name", "recipient_name", "hospital_name", "hospital_phone", "link"}
)
# A coordinator's own words in an SMS ("the driver is at gate B"): only the kinds that
# carry them may read `screened_text`, which only an operation that ran the health-detail
# screen on it fills (`crm.conversation.operations`, `crm.messaging.operations`).
SCREENED_TEXT_KINDS = frozenset({"free_text"})
DEFAULT_LANGUAGE = "en"
DEFAULT_DIRECTORY = Path(__file__).resolve().parents[3] / "config" / "message_templates"

_LAYOUT = """<!DOCTYPE html>
<html lang="{{ language }}" dir="{{ direction }}">
<head><meta charset="utf-8"><title>{{ subject }}</title></head>
<body style="font-family: Arial, Helvetica, sans-serif; line-height: 1.5; color: #222;">
<div style="max-width: 600px; margin: 0 auto; padding: 16px;">
{{ body }}
{%- if footer %}
<hr><p style="font-size: 12px; color: #666;">{{ footer }}
<a href="{{ unsubscribe_url }}">{{ unsubscribe_url }}</a></p>
{%- endif %}
</div>
</body>
</html>
"""


class TemplateError(ValueError):
    """A template file is malformed, incomplete, or breaks the SMS rules."""


@dataclass(frozen=True, slots=True)
class Rendered:
    """A rendered message; ``segments``/``encoding`` are set for SMS only."""

    subject: str | None
    text: str
    html: str | None
    segments: int | None
    encoding: str | None = None
    language: str = DEFAULT_LANGUAGE


@pass_context
def _date_filter(ctx: Context, value: Any, fmt: str = "long") -> str:
    """Format a date in the language being rendered (``{{ travel_date|date }}``)."""
    if not isinstance(value, date):
        return str(value)
    return format_date(value, format=fmt, locale=ctx.get("language", DEFAULT_LANGUAGE))


@pass_context
def _duration_filter(ctx: Context, value: timedelta | int) -> str:
    """``timedelta(days=14)`` (or ``14``) -> "2 weeks" in the language being rendered."""
    days = value.days if isinstance(value, timedelta) else int(value)
    if days >= 60:
        count, unit = round(days / 30.44), "duration-month"
    elif days >= 7 and days % 7 == 0:
        count, unit = days // 7, "duration-week"
    else:
        count, unit = days, "duration-day"
    return format_unit(count, unit, locale=ctx.get("language", DEFAULT_LANGUAGE))


@pass_context
def _money_filter(ctx: Context, minor: Any, currency: str) -> str:
    """Minor units in the language being rendered: ``{{ total_minor|money(currency) }}``."""
    if not isinstance(minor, int) or not currency:
        return str(minor)
    amount = Decimal(minor).scaleb(-get_currency_precision(currency))
    return format_currency(amount, currency, locale=ctx.get("language", DEFAULT_LANGUAGE))


def _environment(autoescape: bool) -> SandboxedEnvironment:
    env = SandboxedEnvironment(
        undefined=StrictUndefined,
        autoescape=autoescape,
        loader=DictLoader({"layout.html": _LAYOUT}),  # compiled once, then cached
    )
    env.filters["date"] = _date_filter
    env.filters["duration"] = _duration_filter
    env.filters["money"] = _money_filter
    return env


TEXT_ENV = _environment(autoescape=False)
HTML_ENV = _environment(autoescape=True)


def sms_variables(kind: str) -> frozenset[str]:
    """What an SMS of this kind may read: the safe variables, and screened free text for the
    kinds that carry a coordinator's own words."""
    return SMS_VARIABLES | {"screened_text"} if kind in SCREENED_TEXT_KINDS else SMS_VARIABLES


def normalise_language(tag: str | None) -> str:
    """``"tr-TR"``, ``"TR"``, ``"tr_TR"`` -> ``"tr"``; empty -> the default language."""
    return (tag or DEFAULT_LANGUAGE).replace("_", "-").split("-")[0].strip().lower()


def template_variables(source: str) -> set[str]:
    """Names a template reads from its context."""
    return set(meta.find_undeclared_variables(TEXT_ENV.parse(source)))


def _compile(env: SandboxedEnvironment, source: str, where: str) -> Template:
    try:
        return env.from_string(source.strip())
    except TemplateSyntaxError as exc:
        raise TemplateError(f"{where}: {exc}") from exc


class TemplateCatalogue:
    """All languages' templates, loaded and checked once."""

    def __init__(self, directory: str | Path = DEFAULT_DIRECTORY) -> None:
        self.directory = Path(directory)
        self._data: dict[str, dict[str, dict[str, str]]] = {}
        self._compiled: dict[tuple[str, str, str], Template] = {}
        for path in sorted(self.directory.glob("*.toml")):
            self._load(path)
        self._check_fallback_complete()

    @property
    def languages(self) -> tuple[str, ...]:
        return tuple(sorted(self._data))

    def _load(self, path: Path) -> None:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise TemplateError(f"{path.name}: {exc}") from exc
        language = path.stem
        for kind, fields in data.items():
            if kind != "meta" and kind not in KINDS:
                raise TemplateError(f"{path.name}: unknown message kind {kind!r}")
            for name, source in fields.items():
                self._add(language, kind, name, source, where=f"{path.name} [{kind}].{name}")
        self._data[language] = data

    def _add(self, language: str, kind: str, name: str, source: Any, where: str) -> None:
        if not isinstance(source, str):
            raise TemplateError(f"{where}: must be a string")
        if kind != "meta" and name not in FIELDS:
            raise TemplateError(f"{where}: unknown field (expected one of {FIELDS})")
        env = HTML_ENV if name == "html" else TEXT_ENV
        self._compiled[(language, kind, name)] = _compile(env, source, where)
        if name == "sms":
            extra = template_variables(source) - sms_variables(kind)
            if extra:
                raise TemplateError(f"{where}: SMS may not use {sorted(extra)}")
        if name == "text":
            self._compiled[(language, kind, "text@html")] = _compile(HTML_ENV, source, where)

    def _check_fallback_complete(self) -> None:
        if DEFAULT_LANGUAGE not in self._data:
            raise TemplateError(f"{DEFAULT_LANGUAGE}.toml is missing from {self.directory}")
        for kind in KINDS:
            for name in REQUIRED_FIELDS:
                if (DEFAULT_LANGUAGE, kind, name) not in self._compiled:
                    raise TemplateError(f"{DEFAULT_LANGUAGE}.toml: [{kind}].{name} is missing")

    def with_overrides(self, overrides: Iterable[tuple[str, str, str, str]]) -> TemplateCatalogue:
        """A copy in which (language, kind, field, source) rows replace the files' fields.

        Each override is compiled and checked exactly like a file's field (an SMS still
        may use only the safe variables); a bad one raises TemplateError.
        """
        clone = copy.copy(self)
        clone._compiled = dict(self._compiled)
        for language, kind, name, source in overrides:
            if kind not in KINDS:
                raise TemplateError(f"unknown message kind {kind!r}")
            clone._add(language, kind, name, source, where=f"{language} [{kind}].{name}")
        return clone

    def sources(self) -> dict[tuple[str, str, str], str]:
        """Every field's source text as loaded from the files: (language, kind, field)."""
        return {
            (language, kind, name): source
            for language, kinds in self._data.items()
            for kind, fields in kinds.items()
            if kind != "meta"
            for name, source in fields.items()
        }

    def template(self, kind: str, name: str, language: str) -> tuple[Template, str] | None:
        """The compiled field for ``language`` or, failing that, English; and its language."""
        for lang in (language, DEFAULT_LANGUAGE):
            found = self._compiled.get((lang, kind, name))
            if found is not None:
                return found, lang
        return None

    def meta(self, language: str, key: str, default: str = "") -> str:
        for lang in (language, DEFAULT_LANGUAGE):
            value = self._data.get(lang, {}).get("meta", {}).get(key)
            if value is not None:
                return str(value)
        return default

    def render(
        self, kind: str, channel: str, language: str | None, context: Mapping[str, Any]
    ) -> Rendered:
        if kind not in KINDS:
            raise TemplateError(f"unknown message kind {kind!r}")
        lang = normalise_language(language)
        if channel == "sms":
            return self._render_sms(kind, lang, context)
        if channel == "whatsapp":
            # The SMS text, under the SMS rules: a lock screen shows it just as openly.
            return dataclasses.replace(
                self._render_sms(kind, lang, context), segments=None, encoding=None
            )
        if channel == "email":
            return self._render_email(kind, lang, context)
        raise TemplateError(f"unknown channel {channel!r} (expected one of {CHANNELS})")

    def _required(self, kind: str, name: str, language: str) -> tuple[Template, str]:
        found = self.template(kind, name, language)
        if found is None:
            raise TemplateError(f"[{kind}].{name} has no template")
        return found

    def _render_sms(self, kind: str, language: str, context: Mapping[str, Any]) -> Rendered:
        template, used = self._required(kind, "sms", language)
        variables = sms_variables(kind)
        allowed = {k: v for k, v in context.items() if k in variables}
        body = " ".join(template.render(allowed, language=used).split())
        info = analyse(body)
        return Rendered(None, body, None, info.segments, info.encoding.value, used)

    def _render_email(self, kind: str, language: str, context: Mapping[str, Any]) -> Rendered:
        text_t, used = self._required(kind, "text", language)  # one language per email
        subject_t, _ = self._required(kind, "subject", used)
        ctx = {**context, "language": used}
        subject = " ".join(subject_t.render(ctx).split())
        text = text_t.render(ctx).strip()
        footer = self._footer(used, ctx)
        if footer:
            text = f"{text}\n\n--\n{footer} {context['unsubscribe_url']}"
        html = self._html(kind, used, ctx, subject, footer)
        return Rendered(subject, text, html, None, None, used)

    def _footer(self, language: str, ctx: Mapping[str, Any]) -> str:
        if not ctx.get("unsubscribe_url"):
            return ""
        found = self.template("meta", "unsubscribe", language)
        return found[0].render(ctx).strip() if found else "Unsubscribe:"

    def _html(
        self, kind: str, language: str, ctx: Mapping[str, Any], subject: str, footer: str
    ) -> str:
        layout = HTML_ENV.get_template("layout.html")
        direction = self.meta(language, "direction", "ltr")
        body = self._html_body(kind, language, ctx)
        return layout.render(
            {
                **ctx,
                "body": body,
                "subject": subject,
                "footer": footer,
                "direction": direction,
                "unsubscribe_url": ctx.get("unsubscribe_url"),
            }
        )

    def _html_body(self, kind: str, language: str, ctx: Mapping[str, Any]) -> Markup:
        """The kind's own HTML in the language its text comes from, else made from text."""
        text_lang = self._required(kind, "text", language)[1]
        explicit = self._compiled.get((text_lang, kind, "html"))
        # Both templates come from the autoescaping environment: their output is safe.
        if explicit is not None:
            return Markup(explicit.render(ctx))  # noqa: S704 - autoescaped template output
        text_html = self._compiled[(text_lang, kind, "text@html")].render(ctx)
        return paragraphs_to_html(Markup(text_html), ctx.get("link"))  # noqa: S704 - ditto


def paragraphs_to_html(escaped: Markup, link: Any = None) -> Markup:
    """Already-escaped text -> ``<p>`` paragraphs with ``<br>`` and the link as an anchor."""
    html = str(escaped).strip()
    if isinstance(link, str) and link.startswith(("https://", "http://")):
        safe = str(escape(link))
        html = html.replace(safe, f'<a href="{safe}">{safe}</a>')
    paras = [p.strip().replace("\n", "<br>\n") for p in html.split("\n\n") if p.strip()]
    return Markup("\n".join(f"<p>{p}</p>" for p in paras))  # noqa: S704 - input is escaped


@lru_cache(maxsize=1)
def default_catalogue() -> TemplateCatalogue:
    """The catalogue in ``config/message_templates`` (loaded once per process)."""
    return TemplateCatalogue(DEFAULT_DIRECTORY)


def render(
    kind: str,
    channel: str,
    language: str | None,
    context: Mapping[str, Any],
    catalogue: TemplateCatalogue | None = None,
) -> Rendered:
    """Render message ``kind`` for ``channel`` (``sms``/``whatsapp``/``email``) in ``language``."""
    return (catalogue or default_catalogue()).render(kind, channel, language, context)
