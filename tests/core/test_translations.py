"""Every patient-facing string is in the catalogue, and every language translates it."""

from __future__ import annotations

import subprocess
import sys

import pytest
from babel.messages.pofile import read_po
from flask import render_template_string

from crm.core.i18n import TRANSLATIONS_DIR, shipped_languages, use_language
from tests.conftest import ROOT


def _catalogue(path):
    with path.open("rb") as source:
        return read_po(source)


def _extracted(tmp_path) -> set[str]:
    """The msgids the code and templates use now (what `make messages` would extract)."""
    out = tmp_path / "now.pot"
    extract = ("extract", "-F", "babel.cfg", "-o", str(out), "--no-location", ".")
    subprocess.run(
        [sys.executable, "-m", "babel.messages.frontend", "-q", *extract],
        cwd=ROOT,
        check=True,
    )
    return {m.id if isinstance(m.id, str) else m.id[0] for m in _catalogue(out) if m.id}


def test_the_shipped_languages_are_the_five_the_messages_speak():
    assert shipped_languages() == ("en", "ar", "de", "ru", "tr")


def test_the_template_catalogue_holds_every_string_the_code_uses(tmp_path):
    template = {
        m.id if isinstance(m.id, str) else m.id[0]
        for m in _catalogue(TRANSLATIONS_DIR / "messages.pot")
        if m.id
    }
    missing = _extracted(tmp_path) - template
    assert not missing, f"run `make messages` and translate: {sorted(missing)[:10]}"


@pytest.mark.parametrize("language", shipped_languages())
def test_no_language_lacks_a_message(language):
    template = [m for m in _catalogue(TRANSLATIONS_DIR / "messages.pot") if m.id]
    translated = _catalogue(TRANSLATIONS_DIR / language / "LC_MESSAGES" / "messages.po")
    untranslated = [
        m.id
        for m in template
        if (found := translated.get(m.id)) is None
        or not (all(found.string) if isinstance(found.string, tuple) else found.string)
        or found.fuzzy
    ]
    assert not untranslated, f"{language} lacks {len(untranslated)}: {untranslated[:5]}"


def test_a_request_in_a_language_without_a_catalogue_reads_english(app):
    with app.test_request_context():
        assert use_language("pt-BR") == "en"
        assert render_template_string("{{ _('Hello') }}") == "Hello"
