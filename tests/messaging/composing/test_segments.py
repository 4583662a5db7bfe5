import math

from hypothesis import given
from hypothesis import strategies as st

from crm.messaging.composing.segments import (
    GSM7_BASIC,
    GSM7_EXTENSION,
    Encoding,
    analyse,
    is_gsm7,
    segment_count,
)

basic = st.text(alphabet=sorted(GSM7_BASIC))
gsm = st.text(alphabet=sorted(GSM7_BASIC | GSM7_EXTENSION))
emoji = st.characters(min_codepoint=0x1F300, max_codepoint=0x1FAFF)


def test_an_empty_body_has_no_segments():
    assert analyse("").units == 0
    assert segment_count("") == 0


def test_160_basic_characters_fit_one_gsm_segment_and_161_need_two():
    assert analyse("a" * 160).segments == 1
    assert analyse("a" * 161).segments == 2
    assert analyse("a" * 306).segments == 2
    assert analyse("a" * 307).segments == 3


def test_extension_characters_count_as_two_septets():
    info = analyse("€" * 80)
    assert (info.encoding, info.units, info.segments) == (Encoding.GSM7, 160, 1)
    assert analyse("€" * 80 + "a").segments == 2


def test_an_escape_pair_is_not_split_across_segments():
    # 152 basic septets then '{' (2 septets) would straddle the 153 boundary
    body = "a" * 152 + "{" + "a" * 10
    assert analyse(body).units == 164
    assert analyse(body).segments == 2
    assert analyse("a" * 152 + "{" + "a" * 152).segments == 3


def test_one_non_gsm_character_switches_the_whole_body_to_ucs2():
    assert analyse("Hello Ayşe").encoding is Encoding.UCS2
    assert analyse("Hello Ayse").encoding is Encoding.GSM7
    assert analyse("ç").encoding is Encoding.UCS2  # only capital Ç is in GSM-7


def test_ucs2_limits_are_70_then_67():
    assert analyse("ж" * 70).segments == 1
    assert analyse("ж" * 71).segments == 2
    assert analyse("ж" * 134).segments == 2
    assert analyse("ж" * 135).segments == 3


def test_an_emoji_is_a_surrogate_pair_of_two_units_never_split():
    assert analyse("😀").units == 2
    assert analyse("😀" * 35).segments == 1
    body = "ж" * 66 + "😀" + "ж" * 3  # 71 units; the pair cannot take unit 67 of segment one
    assert analyse(body).segments == 2
    assert analyse("ж" * 66 + "😀" * 34).segments == 3


def test_segments_per_segment_limit_follows_the_length():
    assert analyse("a").per_segment == 160
    assert analyse("a" * 200).per_segment == 153
    assert analyse("ж").per_segment == 70
    assert analyse("ж" * 100).per_segment == 67


@given(basic)
def test_basic_gsm_text_costs_one_septet_per_character(text):
    info = analyse(text)
    assert info.encoding is Encoding.GSM7
    assert info.units == len(text)
    expected = 0 if not text else 1 if len(text) <= 160 else math.ceil(len(text) / 153)
    assert info.segments == expected


@given(gsm)
def test_gsm_segments_stay_between_the_ideal_and_one_wasted_septet_each(text):
    info = analyse(text)
    assert info.units == len(text) + sum(ch in GSM7_EXTENSION for ch in text)
    if info.units > 160:
        assert math.ceil(info.units / 153) <= info.segments <= math.ceil(info.units / 152)


@given(st.text(min_size=1))
def test_any_text_is_gsm7_exactly_when_every_character_is_in_the_tables(text):
    assert is_gsm7(text) == all(c in GSM7_BASIC or c in GSM7_EXTENSION for c in text)
    info = analyse(text)
    assert info.encoding is (Encoding.GSM7 if is_gsm7(text) else Encoding.UCS2)


@given(st.text(min_size=1).filter(lambda t: not is_gsm7(t)))
def test_ucs2_units_are_utf16_code_units(text):
    info = analyse(text)
    assert info.units == len(text.encode("utf-16-le")) // 2
    if info.units > 70:
        assert math.ceil(info.units / 67) <= info.segments <= math.ceil(info.units / 66)
    else:
        assert info.segments == 1


@given(st.text(), st.text())
def test_appending_text_never_reduces_the_segment_count_within_an_encoding(a, b):
    if is_gsm7(a) == is_gsm7(a + b):
        assert segment_count(a + b) >= segment_count(a)


@given(st.lists(emoji, min_size=1, max_size=200))
def test_emoji_only_bodies_pack_whole_pairs(chars):
    text = "".join(chars)
    per = 70 if len(text) <= 35 else 67
    assert segment_count(text) == math.ceil(len(text) / (per // 2))
