# Test data is Turkish, Russian and Arabic text on purpose: its letters are not typos.
# ruff: noqa: RUF001
import pytest
from hypothesis import given
from hypothesis import strategies as st

from crm.messaging.inbound.keywords import (
    HELP_KEYWORDS,
    OPT_IN_KEYWORDS,
    OPT_OUT_KEYWORDS,
    InboundKind,
    classify,
)


@pytest.mark.parametrize(
    "word", ["STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"]
)
def test_every_opt_out_keyword_withdraws_consent(word):
    assert classify(word).kind is InboundKind.OPT_OUT
    assert classify(word).keyword == word


@pytest.mark.parametrize("word", ["START", "YES", "UNSTOP"])
def test_every_opt_in_keyword_restores_consent(word):
    assert classify(word).kind is InboundKind.OPT_IN


@pytest.mark.parametrize("word", ["HELP", "INFO"])
def test_help_and_info_ask_for_help(word):
    assert classify(word).kind is InboundKind.HELP


@pytest.mark.parametrize(
    "body",
    ["stop", "Stop", "  STOP  ", "stop.", "STOP!", "\tstop\n", '"Stop"', "«stop»",
     "¡stop!", "STOP 🛑", "\uff33\uff34\uff2f\uff30"],
)  # fmt: skip
def test_case_spaces_punctuation_and_width_are_ignored(body):
    assert classify(body).kind is InboundKind.OPT_OUT


def test_turkish_dotted_and_dotless_i_still_match():
    assert classify("İNFO").kind is InboundKind.HELP
    assert classify("ınfo").kind is InboundKind.HELP


@pytest.mark.parametrize(
    "body",
    ["stop sending me these", "please stop", "STOP STOP", "opt-out", "stopp", "s.t.o.p",
     "", "   ", "?!", "yes please", "my pain is 7", "7", "ДА", "نعم"],
)  # fmt: skip
def test_anything_else_is_a_reply_for_a_person(body):
    result = classify(body)
    assert result.kind is InboundKind.REPLY
    assert result.keyword is None


def test_the_keyword_sets_do_not_overlap():
    assert not (OPT_OUT_KEYWORDS & OPT_IN_KEYWORDS)
    assert not (OPT_OUT_KEYWORDS & HELP_KEYWORDS)
    assert not (OPT_IN_KEYWORDS & HELP_KEYWORDS)


keyword = st.sampled_from(sorted(OPT_OUT_KEYWORDS | OPT_IN_KEYWORDS | HELP_KEYWORDS))
noise = st.text(alphabet=" \t\n.,!?;:'\"()-*", max_size=5)


@given(keyword, noise, noise, st.booleans())
def test_a_keyword_wrapped_in_noise_is_still_that_keyword(word, before, after, lower):
    body = before + (word.lower() if lower else word) + after
    assert classify(body).keyword == word


@given(st.text(max_size=40))
def test_classification_never_fails_and_keywords_are_known(body):
    result = classify(body)
    assert (result.keyword is None) == (result.kind is InboundKind.REPLY)
