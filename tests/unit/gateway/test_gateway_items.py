"""The gateway's pure part: bodies into items, CloudEvents mapping, verdicts, scope, status."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.decode import decode
from schemas.events import INPUT_TYPES
from services.gateway.examples import event_types, example_event
from services.gateway.items import (
    CLOUDEVENT,
    CLOUDEVENTS_BATCH,
    JSON,
    NDJSON,
    Accepted,
    BodyError,
    Item,
    Refused,
    from_cloudevent,
    judge,
    split_body,
    split_json_array,
    split_ndjson,
    status_of,
    to_cloudevent,
)

pytestmark = pytest.mark.unit

CPR = "0101901234"


def event(event_type: str = "notification.received", **changes: Any) -> dict[str, Any]:
    return {**example_event(event_type), "event_id": str(uuid.uuid4()), **changes}


def raw(obj: Any) -> bytes:
    return json.dumps(obj).encode()


def only_480(code: str) -> bool:
    return code == "480"


def everyone(_code: str) -> bool:
    return True


@pytest.mark.parametrize("event_type", event_types())
def test_every_example_is_accepted_onto_its_topic(event_type: str) -> None:
    verdict = judge(Item(0, raw(example_event(event_type))), only_480)
    assert isinstance(verdict, Accepted)
    assert verdict.topic == INPUT_TYPES[event_type][1]
    assert verdict.municipality == "480"


def test_a_token_of_480_cannot_write_849s_events() -> None:
    verdict = judge(Item(3, raw(event(municipality_code="849"))), only_480)
    assert isinstance(verdict, Refused)
    assert (verdict.reason, verdict.fields) == ("not_in_scope", ("municipality_code",))
    assert verdict.municipality == "849"
    assert verdict.index == 3


@pytest.mark.parametrize("value", [
    b"not json", b"[]", b'"text"', b"1" * 5000, b"[" * 100_000, b"\xff\xfe",
    raw({"event_type": "summary.requested"}), raw({"event_type": "reporting.progress"}),
])
def test_hostile_items_get_the_consumers_reason(value: bytes) -> None:
    verdict = judge(Item(0, value), everyone)
    assert isinstance(verdict, Refused)
    expected = decode("taskforce.applications", value)
    if expected.reason != "wrong_topic":  # type: ignore[union-attr]
        assert verdict.reason == expected.reason  # type: ignore[union-attr]
    else:
        assert verdict.reason == "unknown_event_type"


def test_reasons_are_the_dlqs_and_name_fields_not_values() -> None:
    bad = event(data={**example_event("notification.received")["data"], "urgent": "yes", "secret": "x"})
    verdict = judge(Item(0, raw(bad)), everyone)
    assert isinstance(verdict, Refused)
    expected = decode("taskforce.notifications", raw(bad))
    assert (verdict.reason, verdict.detail) == (expected.reason, expected.detail)  # type: ignore[union-attr]
    assert "notification.received.data.urgent" in verdict.fields
    assert "notification.received.data.<unknown field>" in verdict.fields
    assert "yes" not in verdict.detail and "secret" not in verdict.detail
    assert verdict.event_id == bad["event_id"]


def test_a_cpr_number_is_refused_and_never_echoed() -> None:
    bad = event(data={**example_event("notification.received")["data"], "child_ref": CPR})
    verdict = judge(Item(0, raw(bad)), everyone)
    assert isinstance(verdict, Refused) and verdict.reason == "cpr_number"
    assert CPR not in repr(verdict)


def test_event_id_is_echoed_only_as_a_uuid() -> None:
    verdict = judge(Item(0, raw(event(event_id=CPR))), everyone)
    assert isinstance(verdict, Refused) and verdict.event_id is None


def test_json_array_items_are_the_raw_bytes_in_order() -> None:
    body = b' [ {"a": 1} ,\n"x", [1, [2]], null ] '
    assert split_json_array(body) == [b'{"a": 1}', b'"x"', b"[1, [2]]", b"null"]
    assert split_json_array(b"[]") == []


def test_json_array_bad_elements_are_items_of_their_own() -> None:
    deep = b"[" * 5000 + b"]" * 5000
    body = b'[{bad json}, ' + deep + b', 1' + b"9" * 5000 + b', {"s": "a,]\\"}"} tail, 7]'
    items = split_json_array(body)
    assert items[0] == b"{bad json}"
    assert items[1] == deep
    assert items[2] == b"1" + b"9" * 5000
    assert items[3] == b'{"s": "a,]\\"}"} tail'
    assert items[4] == b"7"


@pytest.mark.parametrize("body", [b"", b"{}", b"[1, 2", b"[1] x", b'["unterminated', b"not json"])
def test_a_body_that_is_no_array_is_a_400(body: bytes) -> None:
    with pytest.raises(BodyError) as caught:
        split_json_array(body)
    assert caught.value.status == 400


def test_more_than_the_limit_is_a_413() -> None:
    with pytest.raises(BodyError) as caught:
        split_json_array(raw(list(range(1001))))
    assert caught.value.status == 413
    with pytest.raises(BodyError):
        split_ndjson(b"1\n" * 1001)
    assert len(split_json_array(raw(list(range(1000))))) == 1000


def test_invalid_utf8_inside_an_item_travels_to_its_verdict() -> None:
    items = split_json_array(b'[{"a": "\xff"}, 1]')
    assert items[0] == b'{"a": "\xff"}'
    verdict = judge(Item(0, items[0]), everyone)
    assert isinstance(verdict, Refused) and verdict.reason == "invalid_encoding"


def test_ndjson_lines_keep_their_numbers() -> None:
    items = split_ndjson(b'\xef\xbb\xbf{"a":1}\n\n  \r\nnot json\r\n{"b":2}')
    assert [(i.index, i.line, i.raw) for i in items] == [
        (0, 1, b'{"a":1}'), (1, 4, b"not json"), (2, 5, b'{"b":2}')]


def test_media_types() -> None:
    one = event()
    assert [i.raw for i in split_body(raw([one]), "application/json; charset=utf-8")] == [raw(one)]
    assert len(split_body(raw(one) + b"\n", NDJSON)) == 1
    assert len(split_body(raw(to_cloudevent(one)), CLOUDEVENT)) == 1
    assert len(split_body(raw([to_cloudevent(one)] * 2), CLOUDEVENTS_BATCH)) == 2
    with pytest.raises(BodyError) as caught:
        split_body(b"x", "text/plain")
    assert caught.value.status == 415
    assert JSON == "application/json"


def test_cloudevent_mapping_round_trips() -> None:
    one = event(correlation_id="k-1")
    cloudevent = to_cloudevent(one)
    assert cloudevent["id"] == one["event_id"] and cloudevent["type"] == one["event_type"]
    assert cloudevent["time"] == one["occurred_at"] and cloudevent["municipalitycode"] == "480"
    mapped = from_cloudevent(raw(cloudevent))
    assert isinstance(mapped, bytes) and json.loads(mapped) == one
    verdict = judge(Item(0, mapped), only_480)
    assert isinstance(verdict, Accepted) and verdict.event_id == one["event_id"]


def test_cloudevent_schema_version_defaults_to_1() -> None:
    cloudevent = to_cloudevent(event())
    del cloudevent["schemaversion"], cloudevent["datacontenttype"]
    assert isinstance(judge(Item(0, from_cloudevent(raw(cloudevent))), everyone), Accepted)


@pytest.mark.parametrize(("change", "reason"), [
    ({"specversion": "0.3"}, "invalid_cloudevent"),
    ({"datacontenttype": "application/xml"}, "invalid_cloudevent"),
    ({"data_base64": "AAAA"}, "invalid_cloudevent"),
    ({"someextension": "x"}, "invalid_cloudevent"),
    ({"subject": CPR}, "cpr_number"),
])
def test_cloudevents_refused(change: dict[str, Any], reason: str) -> None:
    mapped = from_cloudevent(raw({**to_cloudevent(event()), **change}))
    verdict = judge(Item(0, mapped), everyone)
    assert isinstance(verdict, Refused) and verdict.reason == reason
    assert "someextension" not in verdict.detail


def test_status_convention() -> None:
    ok = Accepted(0, None, "id", "t", "topic", "480", b"")
    bad = Refused(1, None, None, "invalid_json", "x")
    later = Refused(2, None, None, "not_acknowledged", "x", retry=True)
    assert status_of([ok, ok]) == 200 and status_of([]) == 200
    assert status_of([ok, bad]) == 207 and status_of([ok, later]) == 207
    assert status_of([bad]) == 422
    assert status_of([bad, later]) == 503


@given(st.lists(st.one_of(st.binary(max_size=40), st.text(max_size=40).map(str.encode)), max_size=20))
def test_any_body_splits_or_is_refused_as_a_whole(chunks: list[bytes]) -> None:
    body = b"[" + b",".join(chunks) + b"]"
    try:
        items = split_json_array(body)
    except BodyError as exc:
        assert exc.status in (400, 413)
        return
    for index, value in enumerate(items):
        verdict = judge(Item(index, value), everyone)
        assert verdict.index == index
