"""The test oracle for a CPR-like number *as spelled* in raw bytes (no escapes decoded).

Masking must leave none by this reading either; a quoted canonical UUID is not searched
(EVENTS.md 1.1), written here independently of `schemas.cpr`.
"""

from __future__ import annotations

import re

_SPELLED_CPR = re.compile(
    rb"(?<![0-9])(?:0[1-9]|[12][0-9]|3[01])(?:0[1-9]|1[0-2])[0-9]{2}[-/. ]?[0-9]{4}(?![0-9])")
_QUOTED_UUID = re.compile(rb'"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"')


def spelled_cpr(raw: bytes) -> bool:
    """True when the bytes spell a CPR-like number outside a quoted canonical UUID."""
    return bool(_SPELLED_CPR.search(_QUOTED_UUID.sub(b'""', raw)))
