"""Words in the reader's language: gettext catalogues (Flask-Babel).

Patient-facing text is written in English in the code and templates as `_("...")` and
translated in `crm/translations/<language>/LC_MESSAGES/messages.po`, the format
translators' tools (Poedit, Weblate, Crowdin) read. `make translations` compiles them to
`.mo` (every `make run`/`make test` does it first); `make messages` extracts new strings
into `messages.pot` and merges them into every `.po`. A test keeps every language complete.

A page chooses its language with `use_language(...)` (the patient's own on the private
link); anything else reads English.
"""

from __future__ import annotations

from pathlib import Path

from flask import g, has_request_context
from flask_babel import refresh

TRANSLATIONS_DIR = Path(__file__).resolve().parent.parent / "translations"
DEFAULT_LANGUAGE = "en"


def shipped_languages() -> tuple[str, ...]:
    """The languages with a catalogue, English first."""
    found = sorted(p.name for p in TRANSLATIONS_DIR.iterdir() if (p / "LC_MESSAGES").is_dir())
    return (DEFAULT_LANGUAGE, *[lang for lang in found if lang != DEFAULT_LANGUAGE])


def page_language() -> str:
    """Flask-Babel's locale selector: the language this request chose, else English."""
    return g.get("page_language", DEFAULT_LANGUAGE) if has_request_context() else DEFAULT_LANGUAGE


def use_language(language: str) -> str:
    """Render the rest of this request in `language` (a tag such as `pt-BR` falls back to
    its base language, then to English); returns the language chosen."""
    shipped = shipped_languages()
    base = language.replace("_", "-").split("-")[0].lower()
    chosen = base if base in shipped else DEFAULT_LANGUAGE
    g.page_language = chosen
    refresh()
    return chosen


def compile_catalogues() -> None:
    """Compile every `.po` to its `.mo` (what `make translations` does), for a run that did
    not go through make (a test session started by `pytest` alone)."""
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    for po_path in TRANSLATIONS_DIR.glob("*/LC_MESSAGES/messages.po"):
        with po_path.open("rb") as source:
            catalogue = read_po(source)
        with po_path.with_suffix(".mo").open("wb") as target:
            write_mo(target, catalogue, use_fuzzy=True)


RTL_LANGUAGES = frozenset({"ar", "fa", "he", "ur"})


def money_text(minor: int, currency: str, language: str) -> str:
    """An amount in integer minor units as a reader of `language` writes it. Right-to-left
    languages name the currency in words ("7,100.00 دولار أمريكي") rather than CLDR's "US$"
    beside the digits, which a browser reorders to "$US"; no bidi marks (the caller
    isolates the whole amount)."""
    from decimal import Decimal

    from babel.numbers import format_currency, get_currency_precision

    amount = Decimal(minor).scaleb(-get_currency_precision(currency))
    style = "name" if language.split("-")[0] in RTL_LANGUAGES else "standard"
    text = format_currency(amount, currency, locale=language.replace("-", "_"), format_type=style)
    return text.replace("\u200f", "").replace("\u200e", "")
