"""The gateway's fast path for valid events gives the verdict the full path gives, for any item.

`judge` first guesses an item's topic from the bytes of its first `"event_type": "..."` pair
and decodes it there; only a valid event of that topic is decided that way. These tests run
every item through both paths (the full one by switching the guess off) and compare.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.common import MAX_DEPTH
from services.gateway import items
from services.gateway.examples import event_types, example_event
from services.gateway.items import Accepted, Item, judge

pytestmark = pytest.mark.unit

CPR = "0101901234"


def only_480(code: str) -> bool:
    return code == "480"


def full_path(item: Item, monkeypatch: pytest.MonkeyPatch) -> Any:
    with monkeypatch.context() as patch:
        patch.setattr(items, "_guess_topic", lambda _raw: None)
        return judge(item, only_480)


def variants(event_type: str) -> list[bytes]:
    """Valid and invalid spellings of one event, several of them meant to mislead the guess."""
    event = {**example_event(event_type), "event_id": str(uuid.uuid4())}
    other = next(t for t in event_types() if t != event_type and not t.startswith(event_type.split(".")[0]))
    data_first = {"data": {**event["data"], "event_type": other}, **{k: v for k, v in event.items()
                                                                      if k != "data"}}
    text = json.dumps(event)
    deep: Any = 1
    for _ in range(MAX_DEPTH + 1):
        deep = [deep]
    return [
        json.dumps(event).encode(),
        json.dumps(event, indent=2).encode(),  # whitespace around the colon and between pairs
        text.replace('"event_type": ', '"event_type"  :\t').encode(),
        json.dumps({**event, "municipality_code": "849"}).encode(),  # valid, out of scope
        json.dumps(data_first).encode(),  # an event_type inside data, listed first
        json.dumps({"data": {"event_type": event_type}, **{k: v for k, v in event.items()
                                                            if k != "data"}}).encode(),
        # the same key twice: the last one counts, for json and for pydantic alike
        ('{"event_type": "' + other + '", ' + text[1:]).encode(),
        (text[:-1] + ', "event_type": "' + other + '"}').encode(),
        json.dumps({**event, "source": f"note {CPR}"}).encode(),  # a CPR-like number
        json.dumps({**event, "schema_version": 2}).encode(),
        json.dumps({**event, "extra": 1}).encode(),
        json.dumps({**event, "event_id": "not-a-uuid"}).encode(),
        json.dumps({**event, "event_type": event_type.upper()}).encode(),
        json.dumps({**event, "data": {"nested": deep}}).encode(),  # nested deeper than the limit
        text.encode()[:-1],  # not JSON
    ]


@pytest.mark.parametrize("event_type", event_types())
def test_the_fast_path_and_the_full_path_agree(event_type: str, monkeypatch: pytest.MonkeyPatch) -> None:
    outcomes = []
    for index, value in enumerate(variants(event_type)):
        item = Item(index, value, index + 1)
        fast = judge(item, only_480)
        assert fast == full_path(item, monkeypatch), value
        outcomes.append(isinstance(fast, Accepted))
    assert outcomes[:3] == [True, True, True]  # the variants exercise both outcomes
    assert not all(outcomes)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(event_types()), st.data())
def test_any_change_to_a_valid_event_is_judged_alike_by_both_paths(event_type: str, data: st.DataObject,
                                                                    ) -> None:
    event = {**example_event(event_type), "event_id": str(uuid.uuid4())}
    key = data.draw(st.sampled_from(sorted(event)), label="field")
    event[key] = data.draw(st.one_of(st.none(), st.integers(), st.text(max_size=12),
                                     st.sampled_from(event_types()), st.just(event[key])), label="value")
    item = Item(0, json.dumps(event).encode())
    with pytest.MonkeyPatch.context() as patch:
        fast = judge(item, only_480)
        patch.setattr(items, "_guess_topic", lambda _raw: None)
        assert fast == judge(item, only_480)
