"""The contract catalogue (`schemas.catalogue`): complete, consistent, and what the rest derives from."""

from __future__ import annotations

import dataclasses
import inspect
import json
from typing import get_args

import pytest

from schemas import asyncapi, audit, catalogue, commands, decode, events, generate, reporting, summary, topics
from schemas.catalogue import BY_TYPE, CATALOGUE, EventSpec
from schemas.common import EnvelopeFields
from taskforce import cli
from tests.unit.schemas import examples

pytestmark = pytest.mark.unit

#: The modules that define the contract's event models.
_MODEL_MODULES = (events, reporting, commands, summary, audit)
#: Event models that are deliberately not in the catalogue (see its docstring).
_NOT_CATALOGUED = {audit.AuditEvent}


def _contract_models() -> list[type[EnvelopeFields]]:
    return [obj for module in _MODEL_MODULES for _, obj in inspect.getmembers(module, inspect.isclass)
            if issubclass(obj, EnvelopeFields) and obj.__module__ == module.__name__]


def test_every_event_model_of_the_contract_is_catalogued_exactly_once() -> None:
    models = [spec.model for spec in CATALOGUE]
    assert len(models) == len(set(models)), "a model is catalogued twice"
    assert set(models) == set(_contract_models()) - _NOT_CATALOGUED
    assert len(BY_TYPE) == len(CATALOGUE)


@pytest.mark.parametrize("spec", CATALOGUE, ids=lambda spec: spec.event_type)
def test_the_entry_agrees_with_its_model(spec: EventSpec) -> None:
    assert get_args(spec.model.model_fields["event_type"].annotation) == (spec.event_type,)
    assert spec.topic in topics.DEFAULT_PARTITIONS


@pytest.mark.parametrize("spec", CATALOGUE, ids=lambda spec: spec.event_type)
def test_the_example_decodes_on_its_topic_and_round_trips(spec: EventSpec) -> None:
    example = spec.example
    assert (example["event_type"], example["schema_version"]) == (spec.event_type, spec.schema_version)
    raw = json.dumps(example, ensure_ascii=False).encode("utf-8")
    event = decode.decode(spec.topic, raw)
    assert type(event) is spec.model, event
    assert event.model_dump(mode="json", exclude_unset=True) == example
    assert decode.decode(spec.topic, event.model_dump_json().encode("utf-8")) == event


@pytest.mark.parametrize("spec", CATALOGUE, ids=lambda spec: spec.event_type)
def test_the_example_is_refused_on_every_other_topic(spec: EventSpec) -> None:
    raw = json.dumps(spec.example).encode("utf-8")
    for topic in (*catalogue.TOPICS, topics.DLQ, topics.AUDIT):
        if topic != spec.topic:
            result = decode.decode(topic, raw)
            assert isinstance(result, decode.Rejection) and result.reason == "wrong_topic", (topic, result)


def test_the_table_is_immutable_and_every_example_a_fresh_copy() -> None:
    spec = BY_TYPE["notification.received"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.topic = topics.DLQ  # type: ignore[misc]
    with pytest.raises(TypeError):
        BY_TYPE["x"] = spec  # type: ignore[index]
    spec.example["data"]["urgent"] = True
    assert spec.example["data"]["urgent"] is False
    assert isinstance(CATALOGUE, tuple)


def test_the_examples_event_ids_are_distinct() -> None:
    assert len({spec.example["event_id"] for spec in CATALOGUE}) == len(CATALOGUE)


def test_the_topics_follow_the_kinds() -> None:
    assert catalogue.topics_of("input") == topics.INPUT_TOPICS
    assert catalogue.topics_of("command") == (topics.COMMANDS,)
    assert catalogue.topics_of("output") == (topics.SUMMARIES,)
    assert catalogue.topics_of("internal") == (topics.REPORTING,)
    for topic in catalogue.TOPICS:  # a topic carries one kind of type
        assert len({spec.kind for spec in catalogue.on_topic(topic)}) == 1, topic


def test_the_derived_views_are_the_catalogue() -> None:
    in_order = [spec.event_type for spec in CATALOGUE]
    assert list(generate.event_types()) == in_order
    assert generate.event_types()["reporting.progress"] == (
        reporting.ProgressReported, topics.REPORTING, reporting.REPORTING_SCHEMA_VERSION)
    assert dict(events.INPUT_TYPES) == {spec.event_type: (spec.model, spec.topic)
                                        for spec in CATALOGUE if spec.kind == "input"}
    assert list(examples.EVENT_TYPES) == in_order
    consumed = [name for name in in_order if name != "committee_summary.published"]
    assert consumed == examples.DECODABLE
    assert set(decode.ADAPTERS) == set(catalogue.TOPICS)
    for name in in_order:
        assert cli.example_event(name) == BY_TYPE[name].example
        assert examples.valid(name) == {**BY_TYPE[name].example, "correlation_id": examples.CORRELATION_ID}


def test_the_asyncapi_document_describes_every_catalogued_topic() -> None:
    channels = {channel for channel in asyncapi.build_document()["channels"]}
    for spec in CATALOGUE:
        if spec.decodable:
            assert asyncapi.channel_id(spec.topic, asyncapi.RECEIVE) in channels
        if spec.kind in ("internal", "output"):
            assert asyncapi.channel_id(spec.topic, asyncapi.SEND) in channels


def test_an_unknown_name_is_still_an_attribute_error() -> None:
    with pytest.raises(AttributeError):
        events.NO_SUCH_TABLE  # type: ignore[attr-defined]  # noqa: B018
