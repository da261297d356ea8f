"""The checked-in JSON Schemas and AsyncAPI document are current, and agree with the models.

A failure of `test_checked_in_artefact_is_current` means a model changed without
`python -m schemas.generate` (`make schemas`) being run; the fresh output is compared in
memory, nothing is written to the repository.
"""

from __future__ import annotations

import json
import re
from pathlib import Path as FilePath
from typing import Any

import pytest
from jsonschema import Draft202012Validator, FormatChecker

from schemas import generate, topics
from schemas.asyncapi import RECEIVE, SEND, channel_id
from schemas.audit import AuditEvent
from tests.unit.schemas.examples import EVENT_TYPES, Path, valid, with_value, without

pytestmark = pytest.mark.unit

REASONS = {"invalid_json", "invalid_encoding", "cpr_number", "unknown_event_type", "wrong_topic",
           "unsupported_schema_version", "invalid_event", "undecodable"}
#: An output record the broker refuses for good goes to the DLQ with one of these.
OUTPUT_REASONS = {"output_too_large", "output_invalid", "output_not_authorized"}
EXPECTED_FILES = [generate.JSONSCHEMA_DIR / f"{name}.json" for name in EVENT_TYPES] + [generate.ASYNCAPI_PATH]


@pytest.fixture(scope="module")
def fresh() -> dict[FilePath, str]:
    return generate.artefacts()


@pytest.fixture(scope="module")
def asyncapi(fresh: dict[FilePath, str]) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(fresh[generate.ASYNCAPI_PATH])
    return document


def schema_of(fresh: dict[FilePath, str], event_type: str) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(fresh[generate.JSONSCHEMA_DIR / f"{event_type}.json"])
    return schema


def validator(fresh: dict[FilePath, str], event_type: str) -> Draft202012Validator:
    return Draft202012Validator(schema_of(fresh, event_type), format_checker=FormatChecker())


# --- staleness -------------------------------------------------------------------------------


def test_every_event_type_gets_a_schema(fresh: dict[FilePath, str]) -> None:
    assert list(generate.event_types()) == list(EVENT_TYPES)
    assert set(fresh) == set(EXPECTED_FILES)


@pytest.mark.parametrize("path", EXPECTED_FILES, ids=lambda p: p.name)
def test_checked_in_artefact_is_current(fresh: dict[FilePath, str], path: FilePath) -> None:
    assert path.is_file(), f"{path.name} is missing: run `python -m schemas.generate`"
    assert path.read_text(encoding="utf-8") == fresh[path], \
        f"{path.name} is stale: run `python -m schemas.generate` and commit the result"


def test_no_leftover_schema_files() -> None:
    leftovers = sorted(p.name for p in generate.JSONSCHEMA_DIR.glob("*.json") if p not in EXPECTED_FILES)
    assert not leftovers, "no event type has these; `python -m schemas.generate` removes them"


def test_generation_is_deterministic_and_canonical(fresh: dict[FilePath, str]) -> None:
    assert generate.artefacts() == fresh
    for text in fresh.values():
        assert text == json.dumps(json.loads(text), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def test_check_mode_lists_stale_files_and_write_mends_them(
    tmp_path: FilePath, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(generate, "JSONSCHEMA_DIR", tmp_path / "jsonschema")
    monkeypatch.setattr(generate, "ASYNCAPI_PATH", tmp_path / "asyncapi.json")
    assert generate.main(["--check"]) == 1  # nothing written yet: all missing
    assert generate.main([]) == 0
    assert generate.main(["--check"]) == 0

    changed = tmp_path / "jsonschema" / "notification.received.json"
    changed.write_text(changed.read_text(encoding="utf-8").replace("urgent", "urgency"), encoding="utf-8")
    leftover = tmp_path / "jsonschema" / "notification.deleted.json"
    leftover.write_text("{}\n", encoding="utf-8")
    capsys.readouterr()
    assert generate.main(["--check"]) == 1
    err = capsys.readouterr().err
    assert "notification.received.json" in err and "notification.deleted.json" in err
    assert "asyncapi.json" not in err

    assert generate.main([]) == 0
    assert not leftover.exists()
    assert generate.main(["--check"]) == 0


# --- the JSON Schemas ----------------------------------------------------------------------


@pytest.mark.parametrize("event_type", list(EVENT_TYPES))
def test_schema_is_a_valid_draft_2020_12_schema_with_id_and_title(fresh: dict[FilePath, str],
                                                                  event_type: str) -> None:
    schema = schema_of(fresh, event_type)
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == f"urn:taskforce:schema:v1:{event_type}"
    assert schema["title"] == event_type
    assert schema["description"]
    assert schema["additionalProperties"] is False
    assert schema["properties"]["event_type"]["const"] == event_type
    version = schema["properties"]["schema_version"]
    assert version["minimum"] == version["maximum"] == 1
    assert set(schema["required"]) >= {"event_id", "event_type", "schema_version", "occurred_at",
                                       "municipality_code", "source", "data"}


@pytest.mark.parametrize("event_type", list(EVENT_TYPES))
def test_the_valid_example_validates_against_its_json_schema(fresh: dict[FilePath, str],
                                                              event_type: str) -> None:
    validator(fresh, event_type).validate(valid(event_type))


@pytest.mark.parametrize("event_type", list(EVENT_TYPES))
def test_a_json_schema_refuses_other_event_types(fresh: dict[FilePath, str], event_type: str) -> None:
    other = next(name for name in EVENT_TYPES if name != event_type)
    assert not validator(fresh, event_type).is_valid(valid(other))


#: Invalid events whose fault JSON Schema can express (the CPR guard, 3.0 as an integer, a plan
#: without milestones and duplicate milestone ids it cannot: decode checks those).
SCHEMA_INVALID: list[tuple[str, str, Path, Any]] = [
    ("notification.received", "set", ("municipality_code",), "48"),
    ("notification.received", "set", ("municipality_code",), "4800"),
    ("notification.received", "set", ("municipality_code",), "48a"),
    ("notification.received", "set", ("source",), ""),
    ("notification.received", "set", ("source",), "x" * 101),
    ("notification.received", "set", ("event_id",), "not-a-uuid"),
    ("notification.received", "set", ("schema_version",), 2),
    ("notification.received", "set", ("schema_version",), "1"),
    ("notification.received", "set", ("occurred_at",), 1646123400),
    ("notification.received", "set", ("data", "urgent"), "true"),
    ("notification.received", "set", ("data", "reporter"), "neighbour"),
    ("notification.received", "set", ("data", "comment"), "unknown field"),
    ("notification.received", "set", ("priority",), "unknown envelope field"),
    ("notification.received", "del", ("data", "child_ref"), None),
    ("notification.received", "del", ("occurred_at",), None),
    ("application.submitted", "set", ("data", "reasons"), []),
    ("application.submitted", "set", ("data", "reasons"), ["budget"]),
    ("application.decided", "set", ("data", "expected_start"), "2021-02-30"),
    ("case_review.completed", "set", ("data", "ratings", "assessment"), 0),
    ("case_review.completed", "set", ("data", "ratings", "assessment"), 5),
    ("case_review.completed", "set", ("data", "ratings", "assessment"), "3"),
    ("case_review.completed", "del", ("data", "ratings", "involvement"), None),
    ("case_review.completed", "set", ("data", "legal_findings", 0, "severity"), "critical"),
    ("development_plan.adopted", "set", ("data", "goals"), []),
    ("followup.meeting_held", "set", ("data", "cases_rereviewed"), -1),
    ("followup.meeting_held", "set", ("data", "cases_rereviewed"), "3"),
    ("summary.requested", "set", ("data", "period"), "2022H3"),
    ("summary.requested", "set", ("data", "final"), "true"),
    ("committee_summary.published", "set", ("data", "status"), "published"),
    ("committee_summary.published", "set", ("data", "revision"), -1),
    ("reporting.milestone_changed", "set", ("data", "state", "history"), []),
    ("reporting.course_changed", "set", ("data", "version"), -1),
]


@pytest.mark.parametrize(("event_type", "how", "path", "value"), SCHEMA_INVALID)
def test_the_json_schema_refuses_what_it_can_express(fresh: dict[FilePath, str], event_type: str, how: str,
                                                     path: Path, value: Any) -> None:
    event = with_value(valid(event_type), path, value) if how == "set" else without(valid(event_type), path)
    assert not validator(fresh, event_type).is_valid(event)


# --- the AsyncAPI document -------------------------------------------------------------------


def _resolve(document: dict[str, Any], ref: str) -> Any:
    node: Any = document
    for part in ref.removeprefix("#/").split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return own + [r for value in node.values() for r in _refs(value)]
    if isinstance(node, list):
        return [r for value in node for r in _refs(value)]
    return []


def test_asyncapi_document_header(asyncapi: dict[str, Any]) -> None:
    assert asyncapi["asyncapi"] == "3.0.0"
    assert asyncapi["info"]["title"] == "taskforce"
    assert asyncapi["info"]["version"] == "1.0.0"
    assert asyncapi["defaultContentType"] == "application/json"


def test_every_reference_in_the_asyncapi_document_resolves(asyncapi: dict[str, Any]) -> None:
    for ref in _refs(asyncapi):
        assert ref.startswith("#/"), ref
        _resolve(asyncapi, ref)


def test_asyncapi_channels_are_the_topics(asyncapi: dict[str, Any]) -> None:
    received = (*topics.INPUT_TOPICS, topics.COMMANDS, topics.REPORTING)
    sent = (topics.REPORTING, topics.SUMMARIES, topics.DLQ, topics.AUDIT)
    expected = {channel_id(t, RECEIVE): t for t in received} | {channel_id(t, SEND): t for t in sent}
    assert {name: channel["address"] for name, channel in asyncapi["channels"].items()} == expected
    for name in expected:
        operation = asyncapi["operations"][name]
        assert operation["action"] == (RECEIVE if name.endswith(RECEIVE) else SEND)
        assert operation["channel"] == {"$ref": f"#/channels/{name}"}


def _payload_event_types(asyncapi: dict[str, Any], channel: str) -> set[str]:
    messages = asyncapi["channels"][channel]["messages"]
    (message_ref,) = (m["$ref"] for m in messages.values())
    payload = _resolve(asyncapi, _resolve(asyncapi, message_ref)["payload"]["$ref"])
    variants = [_resolve(asyncapi, v["$ref"]) for v in payload["oneOf"]] if "oneOf" in payload else [payload]
    return {variant["properties"]["event_type"]["const"] for variant in variants}


@pytest.mark.parametrize(
    ("topic", "action"),
    [(t, RECEIVE) for t in (*topics.INPUT_TOPICS, topics.COMMANDS, topics.REPORTING)]
    + [(topics.REPORTING, SEND), (topics.SUMMARIES, SEND)],
)
def test_each_channel_carries_exactly_its_event_types(asyncapi: dict[str, Any], topic: str,
                                                      action: str) -> None:
    expected = {name for name, (_, t) in EVENT_TYPES.items() if t == topic}
    assert _payload_event_types(asyncapi, channel_id(topic, action)) == expected


@pytest.mark.parametrize("event_type", list(EVENT_TYPES))
def test_asyncapi_components_are_the_models_own_schemas(asyncapi: dict[str, Any], event_type: str) -> None:
    """FastStream files payload schemas by model name; two models of one name would be merged
    silently (e.g. `summary.FindingCounts` and `reporting.FindingCounts`), so compare them all."""
    model = EVENT_TYPES[event_type][0]
    own = model.model_json_schema(mode="validation", ref_template="#/components/schemas/{model}")
    definitions = own.pop("$defs", {})
    components = asyncapi["components"]["schemas"]
    for name, schema in [(model.__name__, own), *definitions.items()]:
        assert components[name] == schema, name


def test_the_dead_letter_message_names_its_headers(asyncapi: dict[str, Any]) -> None:
    messages = asyncapi["channels"][channel_id(topics.DLQ, SEND)]["messages"]
    (message,) = (_resolve(asyncapi, m["$ref"]) for m in messages.values())
    headers = message["headers"]
    assert set(headers["properties"]["reason"]["enum"]) == REASONS | OUTPUT_REASONS
    assert {"reason", "reason_detail", "original_topic", "rejected_by"} <= set(headers["required"])
    assert {"original_partition", "original_offset", "original_size", "value_truncated_from",
            "key_truncated_from"} <= set(headers["properties"])
    assert _resolve(asyncapi, message["payload"]["$ref"])["format"] == "binary"


def test_every_event_message_is_keyed_by_municipality_code(asyncapi: dict[str, Any]) -> None:
    dlq = {m["$ref"] for m in asyncapi["channels"][channel_id(topics.DLQ, SEND)]["messages"].values()}
    audit = {m["$ref"] for m in asyncapi["channels"][channel_id(topics.AUDIT, SEND)]["messages"].values()}
    for name, message in asyncapi["components"]["messages"].items():
        if f"#/components/messages/{name}" in dlq:
            continue
        # The audit trail's key is "*" when an access named no municipality.
        pattern = r"^([0-9]{3}|\*)$" if f"#/components/messages/{name}" in audit else r"^[0-9]{3}$"
        assert message["bindings"]["kafka"]["key"]["pattern"] == pattern, name
        assert message["correlationId"]["location"] == "$message.payload#/correlation_id", name


def test_component_names_match_the_asyncapi_key_pattern(asyncapi: dict[str, Any]) -> None:
    """AsyncAPI 3.0: component keys MUST match `^[a-zA-Z0-9.\\-_]+$` (FastStream's use ':')."""
    for kind in ("messages", "schemas"):
        for name in asyncapi["components"][kind]:
            assert re.fullmatch(r"[\w.\-]+", name, flags=re.ASCII), name


def test_the_audit_channel_carries_the_audit_event(asyncapi: dict[str, Any]) -> None:
    assert _payload_event_types(asyncapi, channel_id(topics.AUDIT, SEND)) == {"access.audited"}
    own = AuditEvent.model_json_schema(mode="validation", ref_template="#/components/schemas/{model}")
    definitions = own.pop("$defs", {})
    for name, schema in [(AuditEvent.__name__, own), *definitions.items()]:
        assert asyncapi["components"]["schemas"][name] == schema, name
