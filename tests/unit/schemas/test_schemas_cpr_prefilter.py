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
