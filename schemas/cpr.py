"""CPR-like numbers (EVENTS.md 1.1): found in raw record bytes and masked in what we pass on.

A CPR-like number is six digits forming a day 01–31 and a month 01–12, an optional
separator (`-`, `/`, `.` or a space), then four digits, with no digit directly before or
after. Digits are `0`–`9` after Unicode NFKC normalisation (so full-width digits count), and
a JSON text is read as its decoded characters (so `\\u0030` is a zero). A string that is
exactly a canonical UUID is not searched.

Everything here works on the raw text in one left-to-right pass, with no JSON parse and no
recursion: it cannot raise on, or be slowed by, nesting, duplicate keys, invalid UTF-8 or
unbalanced quotes. Two questions are answered:

- `contains_cpr`: does any *string or key* of a JSON text hold one? (The contract's rule; a
  JSON number is not a string.)
- `mask_cpr`: the bytes with every CPR-like number anywhere (strings, numbers, or text that
  is not JSON at all) replaced by `X`s, one per digit; separators stay. A digit spelled as an
  escape or a full-width character becomes one `X`, so a JSON text stays JSON. Masking reads
  the bytes both ways, as decoded characters and as spelled (the escape `\\u1111` before
  `131111` spells ten digits in a row but decodes to a letter and six), and repeats until neither
  reading finds one, because masking by one reading can shorten a digit run of the other to a
  CPR's length. A quoted canonical UUID is spared in both readings.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_right
from collections.abc import Iterator

#: The shape of a CPR-like number, on characters already decoded and NFKC-normalised.
CPR_PATTERN = re.compile(
    r"(?<![0-9])(?:0[1-9]|[12][0-9]|3[01])(?:0[1-9]|1[0-2])[0-9]{2}[-/. ]?[0-9]{4}(?![0-9])")
_CPR_BYTES = re.compile(CPR_PATTERN.pattern.encode())
#: A string exactly a canonical UUID (8-4-4-4-12 hex digits) is not searched.
UUID_PATTERN = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_UUID_BYTES = re.compile(UUID_PATTERN.pattern.encode())
_QUOTED_UUID_BYTES = re.compile(b'"' + _UUID_BYTES.pattern + b'"')
_DIGITS_TO_X = bytes.maketrans(b"0123456789", b"X" * 10)
#: A JSON string literal (unrolled, so no backtracking); an unterminated one does not match.
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
#: What a decoded character may differ from its spelling in: escapes and non-ASCII runs.
_SPECIAL = re.compile(r'\\u[0-9a-fA-F]{4}|\\["\\/bfnrt]|[^\x00-\x7f]+')
_NON_ASCII = re.compile(r"[^\x00-\x7f]+")
#: The escapes `_SPECIAL` decodes (a backslash before anything else stays as spelled).
_ESCAPE = re.compile(r'\\u[0-9a-fA-F]{4}|\\["\\/bfnrt]')
_ESCAPED = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}
_DIGITS = frozenset("0123456789")
#: Digits → "0", separators → "-", the rest → " ": in ASCII without escapes a CPR-like number
#: shows as one of `_SHAPES`, and two substring searches are far cheaper than the pattern
#: tried at every position (event ids often hold six digits in a row, rarely ten).
_SHAPE = bytes.maketrans(bytes(range(256)), bytes(
    ord("0") if 48 <= b <= 57 else ord("-") if b in b"-/. " else 32 for b in range(256)))
_SHAPES = (b"0000000000", b"000000-0000")


def _may_hold_one(raw: bytes) -> bool:
    """For ASCII without escapes: False when no CPR-like number can be in `raw`."""
    shape = raw.translate(_SHAPE)
    return _SHAPES[0] in shape or _SHAPES[1] in shape


def _may_hold_one_unescaped(text: str) -> bool:
    """For text without escapes: False when no CPR-like number can be in it, its non-ASCII
    characters read as `_View` reads them (NFKC, one at a time). A run already in NFKC holds
    neither a digit nor a separator and stands as a letter; anything else is normalised."""
    def normal(run: re.Match[str]) -> str:
        token = run.group()
        if unicodedata.is_normalized("NFKC", token):
            return "x"
        return "".join(unicodedata.normalize("NFKC", char) for char in token)

    # Only digits and separators count here, so any surrogate may pass as bytes (total on any str).
    return _may_hold_one(_NON_ASCII.sub(normal, text).encode("utf-8", "surrogatepass"))


def _may_hold_one_escaped(text: str) -> bool:
    """`_may_hold_one_unescaped` for any text: its escapes decoded first, as `_View` decodes
    them (so a digit spelled `\\u0030` still counts, and a `\\/` is a separator)."""
    if "\\" in text:
        text = _ESCAPE.sub(_unescaped_letter, text)
    return _may_hold_one_unescaped(text)


def _unescape(token: str) -> str:
    return chr(int(token[2:], 16)) if token[1] == "u" else _ESCAPED[token[1]]


def _unescaped_letter(escape: re.Match[str]) -> str:
    """An escape's character, a surrogate as a letter (never a digit, and not encodable)."""
    char = _unescape(escape.group())
    return "x" if "\ud800" <= char <= "\udfff" else char


def contains_cpr(raw: bytes) -> bool:
    """True when a string or key of the JSON text `raw` holds a CPR-like number."""
    if raw.isascii() and b"\\" not in raw:
        return _plain_contains(raw)
    text = _text(raw)
    if not _may_hold_one_escaped(text):
        return False  # the common case (Danish titles, escaped or not): no digit run to look at
    return next(_numbers(text, strings_only=True), None) is not None


def mask_cpr(raw: bytes) -> bytes:
    """`raw` with every CPR-like number in it masked, whatever `raw` is, by either reading."""
    if raw.isascii() and b"\\" not in raw:
        return _mask_decoded(raw)  # here both readings are one
    masked = raw
    while True:  # each round that changes anything masks at least one digit: it ends
        again = _mask_spelled(_mask_decoded(masked))
        if again == masked:
            return masked
        masked = again


def _mask_spelled(raw: bytes) -> bytes:
    """`raw` with every CPR-like number *as spelled* masked, outside quoted canonical UUIDs."""
    if not _may_hold_one(raw):
        return raw
    spared = [match.span() for match in _QUOTED_UUID_BYTES.finditer(raw)]

    def masked(number: re.Match[bytes]) -> bytes:
        at = bisect_right(spared, (number.start(), len(raw))) - 1
        if at >= 0 and spared[at][1] >= number.end():
            return number[0]
        return number[0].translate(_DIGITS_TO_X)

    return _CPR_BYTES.sub(masked, raw)


def _mask_decoded(raw: bytes) -> bytes:
    """`raw` with every CPR-like number *as decoded* masked (escapes, NFKC, string literals)."""
    if raw.isascii() and b"\\" not in raw and not _may_hold_one(raw):
        return raw
    text = _text(raw)
    if not _may_hold_one_escaped(text):
        return raw
    spans = sorted({span for number in _numbers(text, strings_only=False) for span in number})
    if not spans:
        return raw
    pieces: list[str] = []
    pos = 0
    for start, end in spans:
        pieces.append(text[pos:start])
        pieces.append("X")
        pos = end
    pieces.append(text[pos:])
    return "".join(pieces).encode("utf-8", "surrogateescape")


def _text(raw: bytes) -> str:
    """Bytes as text, total: invalid UTF-8 becomes lone surrogates and encodes back as it was."""
    return raw.decode("utf-8", "surrogateescape")


def _plain_contains(raw: bytes) -> bool:
    """The common case, ASCII without escapes: bytes are characters, quotes delimit strings."""
    if not _may_hold_one(raw):
        return False
    quotes, last_quote, pos = 0, -1, 0  # counted as the matches go: linear in `raw`
    for match in _CPR_BYTES.finditer(raw):
        start = match.start()
        quotes += raw.count(b'"', pos, start)
        found = raw.rfind(b'"', pos, start)
        last_quote = found if found >= 0 else last_quote
        pos = start
        if quotes % 2 == 0:
            continue  # outside any string: a number
        if raw[last_quote + 37:last_quote + 38] == b'"' and _UUID_BYTES.fullmatch(
                raw, last_quote + 1, last_quote + 37):
            continue
        return True
    return False


def _numbers(text: str, *, strings_only: bool) -> Iterator[list[tuple[int, int]]]:
    """Each CPR-like number in `text`, as the spans of `text` that spell its digits.

    String literals are searched on their own, with the UUID exemption; between them (and
    in an unterminated string) the text is searched too unless `strings_only`.
    """
    pos = 0
    for literal in _STRING.finditer(text):
        if not strings_only and literal.start() > pos:
            yield from _in_region(text, pos, literal.start(), may_be_uuid=False)
        yield from _in_region(text, literal.start() + 1, literal.end() - 1, may_be_uuid=True)
        pos = literal.end()
    if not strings_only and pos < len(text):
        yield from _in_region(text, pos, len(text), may_be_uuid=False)


def _in_region(text: str, start: int, end: int, *, may_be_uuid: bool) -> Iterator[list[tuple[int, int]]]:
    """The CPR-like numbers of `text[start:end]`, read as decoded, normalised characters."""
    region = text[start:end]
    if region.isascii() and "\\" not in region:
        if may_be_uuid and UUID_PATTERN.fullmatch(region):
            return
        for match in CPR_PATTERN.finditer(region):
            yield [(start + i, start + i + 1) for i in range(match.start(), match.end())
                   if region[i] in _DIGITS]
        return
    view = _View(text, start, end)
    if may_be_uuid and view.spelled_plainly and UUID_PATTERN.fullmatch(view.chars):
        return
    for match in CPR_PATTERN.finditer(view.chars):
        yield [view.source(i) for i in range(match.start(), match.end()) if view.chars[i] in _DIGITS]


class _View:
    """A stretch of JSON text as the characters it means, each traced back to its spelling.

    Escapes are decoded and non-ASCII characters NFKC-normalised. The view is a list of
    segments: a *plain* one maps character for character onto the text, a *token* (an escape,
    or one character whose normal form differs) maps all its characters onto its spelling.
    """

    def __init__(self, text: str, start: int, end: int) -> None:
        self._starts: list[int] = []  # where each segment starts in `chars`
        self._spelled: list[tuple[int, int, bool]] = []  # its spelling: start, end, plain?
        self._pieces: list[str] = []
        self._length = 0
        #: False when a character only became ASCII by normalisation (no UUID then).
        self.spelled_plainly = True
        pos = start
        for special in _SPECIAL.finditer(text, start, end):
            if special.start() > pos:
                self._add(text[pos:special.start()], pos, special.start(), plain=True)
            token = special.group()
            if token[0] == "\\":
                char = _unescape(token)
                self.spelled_plainly = self.spelled_plainly and char.isascii()
                self._add(unicodedata.normalize("NFKC", char), special.start(), special.end(), plain=False)
            elif unicodedata.is_normalized("NFKC", token):
                self._add(token, special.start(), special.end(), plain=True)  # no digit in it
            else:
                self.spelled_plainly = False
                for offset, char in enumerate(token, special.start()):
                    self._add(unicodedata.normalize("NFKC", char), offset, offset + 1, plain=False)
            pos = special.end()
        if pos < end:
            self._add(text[pos:end], pos, end, plain=True)
        self.chars = "".join(self._pieces)

    def _add(self, chars: str, start: int, end: int, *, plain: bool) -> None:
        if not chars:
            return
        self._starts.append(self._length)
        self._spelled.append((start, end, plain))
        self._pieces.append(chars)
        self._length += len(chars)

    def source(self, index: int) -> tuple[int, int]:
        """The span of the text that spells character `index` of the view."""
        segment = bisect_right(self._starts, index) - 1
        start, end, plain = self._spelled[segment]
        if plain:
            at = start + index - self._starts[segment]
            return at, at + 1
        return start, end
