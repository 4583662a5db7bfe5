"""Every shipped SMS template, in every language, fits 1 GSM-7 or 2 UCS-2 segments with the
longest values a real message can carry: a 20-character first name in any script (a German
text with a Turkish name goes out as UCS-2), the configured hospital name and phone, and a
real short link on a realistic public address."""

# The names are Turkish, Russian and Arabic on purpose: their letters are not typos.
# ruff: noqa: RUF001
from __future__ import annotations

import tomllib

import pytest

from crm.messaging.composing.segments import Encoding, analyse
from crm.messaging.composing.templates import DEFAULT_DIRECTORY, default_catalogue
from crm.patients import short_links

LANGUAGES = ("en", "tr", "ar", "ru", "de")
BASE_URL = "https://care.istanbul-spine.example"
# The longest first names we consider reasonable, one per script (20 characters each).
NAMES = (
    "Maximilian Alexander",
    "Muhammed Şükrü Çağrı",
    "Александра Анастасия",
    "عبد الرحمن عبد الكري",
)


def _sms_kinds(language: str) -> list[str]:
    """The kinds whose `sms` the shipped file for this language writes itself."""
    data = tomllib.loads((DEFAULT_DIRECTORY / f"{language}.toml").read_text(encoding="utf-8"))
    return [kind for kind, fields in data.items() if kind not in NOT_TEMPLATES and "sms" in fields]


# `free_text` carries what a coordinator typed (at most 320 characters, screened for health
# detail): its length is the coordinator's, not a template's.
NOT_TEMPLATES = frozenset({"meta", "free_text"})


@pytest.fixture
def short_link(app, session, factory, monkeypatch) -> str:
    """A short link as the outbox writes it, on a realistic public address."""
    monkeypatch.setitem(app.config["CRM"], "PUBLIC_BASE_URL", BASE_URL)
    referral = factory.referral(factory.agency())
    return short_links.short_url(referral.id, message_key="segment-test")


def _fits(text: str) -> bool:
    info = analyse(text)
    return info.segments <= (1 if info.encoding is Encoding.GSM7 else 2)


def test_the_names_are_twenty_characters_and_some_need_ucs2():
    assert {len(name) for name in NAMES} == {20}
    assert analyse(NAMES[0]).encoding is Encoding.GSM7
    assert all(analyse(name).encoding is Encoding.UCS2 for name in NAMES[1:])


def test_the_short_link_is_as_long_as_the_test_assumes(short_link):
    assert short_link.startswith(f"{BASE_URL}/s/")
    assert len(short_link) == len(BASE_URL) + len("/s/") + short_links.CODE_LENGTH


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_sms_fits_one_gsm7_or_two_ucs2_segments(app, short_link, language):
    kinds = _sms_kinds(language)
    assert kinds, f"{language}.toml ships no SMS template"
    settings = app.config["CRM"]
    catalogue = default_catalogue()
    too_long = []
    for kind in kinds:
        for name in NAMES:
            context = {
                "patient_first_name": name,
                "recipient_name": name,
                "hospital_name": settings["HOSPITAL_NAME"],
                "hospital_phone": settings["HOSPITAL_PHONE"],
                "link": short_link,
            }
            rendered = catalogue.render(kind, "sms", language, context)
            assert rendered.language == language
            if not _fits(rendered.text):
                info = analyse(rendered.text)
                too_long.append(
                    f"{kind} ({language}) with {name!r}: {info.units} {info.encoding.value} "
                    f"units, {info.segments} segments"
                )
                break
    assert not too_long, "SMS too long:\n" + "\n".join(too_long)
