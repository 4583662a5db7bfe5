"""Approved WhatsApp templates: which Content SID carries a message kind in a language.

WhatsApp lets a business send free text only within 24 hours of the person's last message
to it; outside that session only a template Meta approved may go, sent by its Content SID
with the values for its numbered placeholders. ``config/whatsapp_templates.toml``
(``CRM_WHATSAPP_TEMPLATES_FILE``) maps kind -> language -> the Content SID and, in order,
the names of the values for ``{{1}}``, ``{{2}}``, ...::

    [mri_reminder.en]
    content_sid = "HX..."
    variables = ["patient_first_name", "link"]

A language without its own template falls back to English. The values a template may take
are the SMS allow-list (no procedure, diagnosis, symptom or price): a lock screen shows a
WhatsApp message as openly as an SMS. Content SIDs belong to one Twilio account, so the
shipped file holds none: each hospital adds its own once Meta has approved them.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from crm.messaging.composing.templates import (
    DEFAULT_LANGUAGE,
    KINDS,
    SMS_VARIABLES,
    TemplateError,
    normalise_language,
)

_CONTENT_SID = re.compile(r"HX[0-9a-f]{32}")


@dataclass(frozen=True, slots=True)
class WhatsAppTemplate:
    kind: str
    language: str
    content_sid: str
    variables: tuple[str, ...]

    def content_variables(self, values: Mapping[str, str]) -> str:
        """The JSON Twilio takes as ContentVariables: {"1": ..., "2": ...}."""
        filled = {str(i): str(values.get(name, "")) for i, name in enumerate(self.variables, 1)}
        return json.dumps(filled, ensure_ascii=False, sort_keys=True)


class WhatsAppTemplates:
    """Every approved template, checked when loaded."""

    def __init__(self, data: Mapping[str, object], where: str = "whatsapp templates") -> None:
        self._templates: dict[tuple[str, str], WhatsAppTemplate] = {}
        for kind, languages in data.items():
            if kind not in KINDS:
                raise TemplateError(f"{where}: unknown message kind {kind!r}")
            if not isinstance(languages, Mapping):
                raise TemplateError(f"{where}: [{kind}] must be a table of languages")
            for language, entry in languages.items():
                self._add(kind, language, entry, f"{where} [{kind}.{language}]")

    def _add(self, kind: str, language: str, entry: object, where: str) -> None:
        if not isinstance(entry, Mapping) or set(entry) != {"content_sid", "variables"}:
            raise TemplateError(f"{where}: needs exactly content_sid and variables")
        sid, variables = entry["content_sid"], entry["variables"]
        if not isinstance(sid, str) or not _CONTENT_SID.fullmatch(sid):
            raise TemplateError(f"{where}: content_sid must be HX and 32 hex digits")
        if not isinstance(variables, list) or not all(isinstance(v, str) for v in variables):
            raise TemplateError(f"{where}: variables must be a list of names")
        if extra := set(variables) - SMS_VARIABLES:
            raise TemplateError(f"{where}: a WhatsApp template may not use {sorted(extra)}")
        lang = normalise_language(language)
        self._templates[(kind, lang)] = WhatsAppTemplate(kind, lang, sid, tuple(variables))

    def find(self, kind: str, language: str | None) -> WhatsAppTemplate | None:
        """The kind's template in the language or, failing that, in English."""
        for lang in (normalise_language(language), DEFAULT_LANGUAGE):
            found = self._templates.get((kind, lang))
            if found is not None:
                return found
        return None

    def __len__(self) -> int:
        return len(self._templates)


@lru_cache(maxsize=8)
def _load(path: str, mtime_ns: int) -> WhatsAppTemplates:
    file = Path(path)
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise TemplateError(f"{file.name}: {exc}") from exc
    return WhatsAppTemplates(data, where=file.name)


PROJECT_ROOT = Path(__file__).resolve().parents[3]


def load_whatsapp_templates(path: str | Path) -> WhatsAppTemplates:
    """The file's templates, read again when the file changes. A relative path is read from
    the working directory or, failing that, the project's root (the scheduler may run
    elsewhere)."""
    file = Path(path)
    if not file.is_file() and not file.is_absolute():
        file = PROJECT_ROOT / file
    if not file.is_file():
        raise TemplateError(f"{path}: no such WhatsApp templates file")
    return _load(str(file.resolve()), file.stat().st_mtime_ns)
