"""The non-ASCII prefilter of the CPR check never hides a CPR-like number the full scan finds."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas import cpr

pytestmark = pytest.mark.unit

#: Characters that become digits or separators under NFKC, or stand between them.
_TRICKY = "０１２３９¼½①⑩²³\u00a0\u3000\u2007－／．åøæÅ"
_texts = st.text(alphabet=st.sampled_from("0123456789-/. x\"" + _TRICKY), max_size=40) | st.text(max_size=60)


@settings(max_examples=400)
@given(text=_texts)
def test_no_number_the_full_scan_finds_is_filtered_out(text: str) -> None:
    text = text.replace("\\", "")
    if not cpr._may_hold_one_unescaped(text):
        assert next(cpr._numbers(text, strings_only=False), None) is None


@pytest.mark.parametrize("value", ["barn ０１０１９０１２３４ på skolen", "å 010190-1234",
                                   "ø 010190\u00a01234", "sag ０１０１９０－１２３４ æ"])
def test_danish_text_with_a_cpr_is_still_refused_and_masked(value: str) -> None:
    raw = f'{{"title": "{value}"}}'.encode()
    assert cpr.contains_cpr(raw)
    assert not cpr.contains_cpr(cpr.mask_cpr(raw))


def test_danish_text_without_one_passes_untouched() -> None:
    raw = '{"title": "Rettidig håndtering af underretninger, 12 sager"}'.encode()
    assert not cpr.contains_cpr(raw) and cpr.mask_cpr(raw) == raw


@st.composite
def escaped_texts(draw: st.DrawFn) -> str:
    """Text with some characters spelled as JSON escapes (digits, separators, surrogates,
    Danish letters), as a JSON text may spell them."""
    chars = draw(st.lists(st.sampled_from("0123456789-/. x" + _TRICKY) | st.characters(), max_size=40))
    out = []
    for char in chars:
        spelling = draw(st.sampled_from(["plain", "u", "U", "solidus"]))
        if spelling == "solidus" and char == "/":
            out.append("\\/")
        elif spelling in ("u", "U") and len(char) == 1:
            hex_code = f"{ord(char):04x}" if ord(char) <= 0xFFFF else None
            out.append(f"\\u{hex_code.upper() if spelling == 'U' else hex_code}" if hex_code else char)
        else:
            out.append(char)
    if draw(st.booleans()):
        stray = "\\" + draw(st.sampled_from(["ud83d", "udc80", "\\", "x", "u00"]))
        out.insert(draw(st.integers(0, len(out))), stray)
    return "".join(out)


@settings(max_examples=600)
@given(text=escaped_texts())
def test_with_escapes_no_number_the_full_scan_finds_is_filtered_out(text: str) -> None:
    if not cpr._may_hold_one_escaped(text):
        assert next(cpr._numbers(text, strings_only=False), None) is None


def test_an_escaped_danish_title_skips_the_scan_and_an_escaped_cpr_does_not() -> None:
    assert not cpr._may_hold_one_escaped('{"title":"Delm\\u00e5l 0.0","due_on":"2020-05-01"}')
    assert cpr.contains_cpr(b'{"title":"M\\u00e5l \\u0030101901234"}')
    assert cpr.contains_cpr(b'{"title":"\\u00e5 010190\\/1234"}')
