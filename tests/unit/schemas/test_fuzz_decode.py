"""Fuzzing the decode → DLQ path: whatever arrives, nothing raises and no CPR-like number
gets through (issue: contract 1.1 and hostile input).

Arbitrary bytes and arbitrary JSON (deep, wide, Unicode, escapes, huge numbers, duplicate
keys, CPR-like numbers spelled every way the contract names) go through `decode`,
`mask_cpr`, the shared batch split with its dead letters, and each owning service's batch
preparation. None may raise; a dead letter must hold no CPR-like number in its key, value or
headers and must fit under the broker's limit; an accepted event must hold none either.

The number of examples follows the Hypothesis profile: a short run in `make test`; 25,000 per
property (5,000 batches), 105,000 in all, in `make fuzz-properties` and `make test-faults`
(`HYPOTHESIS_PROFILE=fuzz`, see tests/conftest.py).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas import topics
from schemas.cpr import contains_cpr, mask_cpr
from schemas.decode import Rejection, decode
from services.analysis.projections import KINDS as ANALYSIS_KINDS
from services.common.dlq import MAX_DLQ_KEY_BYTES, MAX_DLQ_VALUE_BYTES, report_rejections
from services.common.metrics import ServiceMetrics
from services.common.projection import ProjectionEngine, split_batch
from services.common.projection_store import MemoryProjectionStore
from services.common.settings import Settings
from services.followup.projections import KINDS as FOLLOWUP_KINDS
from services.intake.projections import KINDS as INTAKE_KINDS
from tests.support.cpr import spelled_cpr
from tests.support.records import Record
from tests.unit.schemas.examples import DECODABLE, encode, topic_of, valid

pytestmark = pytest.mark.unit

CONSUMED = [topics.APPLICATIONS, topics.NOTIFICATIONS, topics.CASE_REVIEWS, topics.MILESTONES,
            topics.COMMANDS, topics.REPORTING, topics.SUMMARIES]
#: Headers a dead letter may carry besides the value and key (all short, fixed or numeric).
_DLQ_HEADER_BYTES = 4096
FUZZ = settings(deadline=None, suppress_health_check=list(HealthCheck))
#: A batch (up to 8 records through a whole service's preparation) costs about twenty single
#: values: a fifth of the profile's examples, so a long run stays within minutes.
BATCHES = settings(FUZZ, max_examples=max(50, settings().max_examples // 5))

# --- what an attacker sends ---------------------------------------------------------------

_DAY = st.sampled_from([f"{d:02d}" for d in range(1, 32)])
_MONTH = st.sampled_from([f"{m:02d}" for m in range(1, 13)])


@st.composite
def cpr_spellings(draw: st.DrawFn) -> str:
    """A CPR-like number as JSON text inside a string: separators, full-width digits,
    escapes for any of its characters, glued to letters."""
    digits = draw(_DAY) + draw(_MONTH) + draw(st.text("0123456789", min_size=2, max_size=2))
    tail = draw(st.text("0123456789", min_size=4, max_size=4))
    separator = draw(st.sampled_from(["", "-", "/", ".", " ", "\u00a0", "\u3000", "\uff0d"]))
    chars = list(digits) + ([separator] if separator else []) + list(tail)
    spelled = []
    for char in chars:
        how = draw(st.sampled_from(["plain", "full-width", "escape", "escape-full-width"]))
        if how == "full-width" and char.isdigit():
            spelled.append(chr(0xFF10 + int(char)))
        elif how == "escape":
            spelled.append(f"\\u{ord(char):04x}")
        elif how == "escape-full-width" and char.isdigit():
            spelled.append(f"\\u{0xFF10 + int(char):04x}")
        else:
            spelled.append(char)
    glue = draw(st.sampled_from(["", "barn_", "CPR", "x", "æ", "-", " ", "\\n"]))
    after = draw(st.sampled_from(["", "x", "_", " ", "-a", "Ø"]))
    return glue + "".join(spelled) + after


def _json_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


_LEAF = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=20),
    st.sampled_from(["0101901234", "010190-1234", "３１１２９９４３２１", str(uuid.uuid4())]),
)
_JSON = st.recursive(
    _LEAF,
    lambda inner: st.one_of(st.lists(inner, max_size=6),
                            st.dictionaries(st.text(max_size=8), inner, max_size=6)),
    max_leaves=30,
)


@st.composite
def hostile_json(draw: st.DrawFn) -> bytes:
    """JSON text an attacker might write: a valid event bent out of shape, or any value."""
    shape = draw(st.sampled_from(["event", "any", "deep", "duplicate-keys", "cpr"]))
    if shape == "any":
        return _json_text(draw(_JSON)).encode("utf-8", "surrogatepass")
    event_type = draw(st.sampled_from(DECODABLE))
    text = _json_text(valid(event_type))
    if shape == "event":
        extra = draw(_JSON)
        text = text[:-1] + f', "{draw(st.text(max_size=5))}": {_json_text(extra)}}}'
    elif shape == "deep":
        depth = draw(st.integers(min_value=1, max_value=3000))
        text = text[:-1] + ', "x": ' + "[" * depth + '"' + draw(cpr_spellings()) + '"' + "]" * depth + "}"
    elif shape == "duplicate-keys":
        text = text[:-1] + f', "data": {{"{draw(cpr_spellings())}": 1}}, "data": {_json_text(draw(_JSON))}}}'
    else:
        text = text.replace('"480"', '"' + draw(cpr_spellings()) + '"', 1)
    return text.encode("utf-8", "surrogatepass")


ANY_VALUE = st.one_of(st.binary(max_size=400), hostile_json(), st.none())
ANY_KEY = st.one_of(st.none(), st.binary(max_size=40), st.sampled_from([b"480", b"0101901234"]))

# --- what must hold -------------------------------------------------------------------------


def no_cpr_anywhere(raw: bytes) -> bool:
    """Nothing CPR-like, by either reading: as decoded (masking leaves it alone) or as spelled."""
    return mask_cpr(raw) == raw and not spelled_cpr(raw)


PREFIX = "fuzz."
SERVICES = {"intake": INTAKE_KINDS, "analysis": ANALYSIS_KINDS, "followup": FOLLOWUP_KINDS}


def _settings(service: str) -> Settings:
    return Settings(TASKFORCE_SERVICE=service, TASKFORCE_TOPIC_PREFIX=PREFIX)  # type: ignore[call-arg]


def assert_dead_letters_are_clean(letters: list[Any]) -> None:
    for letter in letters:
        assert no_cpr_anywhere(letter.value) and no_cpr_anywhere(letter.key)
        assert all(no_cpr_anywhere(v.encode()) for v in letter.headers.values())
        assert len(letter.value) <= MAX_DLQ_VALUE_BYTES and len(letter.key) <= MAX_DLQ_KEY_BYTES
        assert sum(len(k) + len(v) for k, v in letter.headers.items()) <= _DLQ_HEADER_BYTES


@FUZZ
@given(topic=st.sampled_from(CONSUMED), raw=ANY_VALUE)
def test_decode_never_raises_and_accepts_no_cpr(topic: str, raw: bytes | None) -> None:
    result = decode(topic, raw)
    if isinstance(result, Rejection):
        assert no_cpr_anywhere(result.detail.encode())
    else:
        assert raw is not None and not contains_cpr(raw)
        assert not contains_cpr(result.model_dump_json().encode())


@FUZZ
@given(raw=st.one_of(st.binary(max_size=600), hostile_json()))
def test_masking_never_raises_and_leaves_no_cpr(raw: bytes) -> None:
    masked = mask_cpr(raw)
    assert no_cpr_anywhere(masked)
    assert mask_cpr(masked) == masked
    assert len(masked) <= len(raw)


@FUZZ
@given(text=cpr_spellings(), where=st.sampled_from(["value", "key"]))
def test_every_spelling_of_a_cpr_is_found_and_masked(text: str, where: str) -> None:
    body = f'{{"child_ref": "{text}"}}' if where == "value" else f'{{"{text}": "x"}}'
    raw = body.encode()
    assert contains_cpr(raw)
    masked = mask_cpr(raw)
    assert not contains_cpr(masked)
    json.loads(masked)  # masking keeps JSON text JSON


@FUZZ
@given(st.uuids(), st.sampled_from(DECODABLE), st.booleans())
def test_no_uuid_is_ever_taken_for_a_cpr(value: uuid.UUID, event_type: str, upper: bool) -> None:
    spelled = str(value).upper() if upper else str(value)
    assert not contains_cpr(encode({"id": spelled}))
    event = valid(event_type, event_id=str(value), correlation_id=spelled)
    assert not isinstance(decode(topic_of(event_type), encode(event)), Rejection)


@BATCHES
@given(service=st.sampled_from(sorted(SERVICES)),
       records=st.lists(st.tuples(st.sampled_from(CONSUMED), ANY_VALUE, ANY_KEY), min_size=1, max_size=8))
def test_batch_preparation_never_raises_and_sends_no_cpr(
    service: str, records: list[tuple[str, bytes | None, bytes | None]],
) -> None:
    settings_ = _settings(service)
    batch = [Record(PREFIX + topic, value, key, offset=n) for n, (topic, value, key) in enumerate(records)]
    engine = ProjectionEngine(settings_, MemoryProjectionStore(), ServiceMetrics(service), SERVICES[service])
    prepared = asyncio.run(engine.prepare(batch))  # type: ignore[arg-type]
    assert_dead_letters_are_clean(prepared.dead_letters)
    valid_events, rejected = split_batch(batch, settings_)  # type: ignore[arg-type]
    assert len(valid_events) + len(rejected) <= len(batch)
    assert_dead_letters_are_clean(report_rejections(rejected, settings_, ServiceMetrics(service)))
