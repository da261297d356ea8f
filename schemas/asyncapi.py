"""The AsyncAPI document of the contract, built with FastStream's own AsyncAPI support.

A documentation-only `KafkaBroker` (never connected) declares one subscriber per consumed
topic, typed with the payload that topic carries, and one publisher per produced topic (the
topics and their payloads come from `schemas.catalogue`; the dead letters and the audit trail
are declared here);
FastStream then derives channels, operations, messages and payload schemas from the pydantic
models. FastStream 0.7 has no place for Kafka message keys or message headers yet (see the
TODO in `faststream.specification.asyncapi.v2_6_0.schema.message`), so `build_document`
adds those two contract facts to its output: the record key of every message and the headers
of the dead-letter records. It also points the correlation id at the envelope field, and
renames components whose FastStream names (joined with ':') break AsyncAPI's key pattern.

`python -m schemas.generate` writes the result to `schemas/asyncapi.json`.
"""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import quote

from faststream.kafka import KafkaBroker
from faststream.specification import AsyncAPI

from schemas import topics
from schemas.audit import AuditEvent
from schemas.catalogue import payload, topics_of
from schemas.reporting import REPORTING_SCHEMA_VERSION

TITLE = "taskforce"
VERSION = "1.0.0"
DESCRIPTION = (
    "Event contract v1 of taskforce: the Task Force courses of Danish municipalities for "
    "vulnerable children and young people, from municipal systems to committee summaries.\n\n"
    "Every record value is one UTF-8 JSON object with the envelope `event_id` (UUID), "
    "`event_type`, `schema_version` (1), `occurred_at` (RFC 3339 with offset), "
    "`municipality_code` (3 digits), `source` (1-100 chars), optional `correlation_id` and "
    "`data`. The record key is the municipality code. JSON types are strict and unknown "
    "fields are invalid. Limits (1.1): every string at most 200 characters (`source` 100), "
    "every list at most 200 items, a record value at most 256 KiB. A CPR-like number in any "
    "string or key makes the whole event invalid (1.1: a day 01-31 and month 01-12, two more "
    "digits, an optional `-`, `/`, `.` or space, four digits, no digit directly before or "
    "after, digits after NFKC, JSON escapes decoded; a string exactly a canonical UUID is not "
    "searched). Invalid events go to `taskforce.dlq`; they are never dropped silently.\n\n"
    f"Reporting events on `taskforce.reporting` are internal, version {REPORTING_SCHEMA_VERSION}."
)
#: The local development broker (`make up`); the document does not depend on it otherwise.
SERVER = "127.0.0.1:9092"

_INVALID = "Invalid records go to `taskforce.dlq`."
RECEIVE = "receive"
SEND = "send"


def channel_id(topic: str, action: str) -> str:
    """The channel (and operation) id: the topic and whether the platform receives or sends it.

    `taskforce.reporting` is both sent (by intake, analysis and followup) and received (by
    reporting), so the topic alone cannot name a channel.
    """
    return f"{topic}:{action}"


#: What the platform receives on each topic that carries a catalogued type (the payload comes
#: from `schemas.catalogue`: every input, command and internal type is received by a service).
_RECEIVED: dict[str, str] = {
    topics.APPLICATIONS: "Applications for a course, decisions and course start and end, published "
    f"by municipal systems; consumed by intake. {_INVALID}",
    topics.NOTIFICATIONS: "Notifications of concern (underretninger): receipt and assessment, in "
    f"either order; consumed by intake. {_INVALID}",
    topics.CASE_REVIEWS: f"Completed case reviews with ratings and legal findings; consumed by analysis. "
    f"{_INVALID}",
    topics.MILESTONES: "Development plans, milestone status updates and follow-up meetings; "
    f"consumed by followup. An older milestone update never overwrites a newer one. {_INVALID}",
    topics.COMMANDS: "Requests for a period's summary (draft or final); consumed by reporting. "
    f"Commands do not move the watermark. {_INVALID}",
    topics.REPORTING: "Internal reporting events (event-carried state transfer), consumed by "
    "reporting into its replica; an older entity version never overwrites a newer one.",
}
#: What the platform sends on each topic that carries a catalogued internal or output type.
_SENT: dict[str, str] = {
    topics.REPORTING: "After every change, intake, analysis and followup publish the whole new "
    "state of the entity that changed, its per-entity version and their watermark for "
    "the municipality.",
    topics.SUMMARIES: "Half-yearly committee summaries per municipality, published by reporting "
    "as draft, final or revised (`source` = `taskforce.reporting`).",
}


def _documentation_handler(payload: Any) -> Callable[..., Coroutine[Any, Any, None]]:
    """A subscriber function whose one parameter is typed with `payload` (FastStream reads the
    payload schema from the annotation)."""
    async def handler(event: Any) -> None:
        """Documentation only."""

    handler.__annotations__ = {"event": payload, "return": None}
    return handler


def build_broker() -> KafkaBroker:
    """A broker that only describes the topics: it is never started or connected."""
    broker = KafkaBroker(
        SERVER,
        description="Kafka-protocol broker; topic names may carry a deployment prefix.",
    )
    received = topics_of("input", "command", "internal")
    sent = topics_of("internal", "output")
    if set(received) != set(_RECEIVED) or set(sent) != set(_SENT):
        raise ValueError("schemas.asyncapi: describe every topic of schemas.catalogue, and no other")
    for topic in received:
        broker.subscriber(topic, title=channel_id(topic, RECEIVE), description=_RECEIVED[topic])(
            _documentation_handler(payload(topic)))
    for topic in sent:
        broker.publisher(topic, title=channel_id(topic, SEND), description=_SENT[topic],
                         schema=payload(topic))
    broker.publisher(
        topics.DLQ,
        title=channel_id(topics.DLQ, SEND),
        description="Dead letters: the original record value (CPR-like numbers masked with X, "
        "cut at 256 KiB) and key (cut at 1 KiB), with headers naming the reason and the "
        "original topic, partition and offset; or an output record the broker refused for "
        "good (reasons `output_*`, no partition or offset).",
        schema=bytes,
    )
    broker.publisher(
        topics.AUDIT,
        title=channel_id(topics.AUDIT, SEND),
        description="The audit trail: one `access.audited` event per access decision on case data, "
        "from every service (a read with its outcome 200/401/403/404/422, the index's listing, a "
        "sign-in or sign-out): who (a token's id or the JWT `sub`, never a token), their scope, "
        "what (service, route, municipality, period), the outcome, when and from which client. "
        "The key is the municipality code, or `*` when the request named none. Consumed by "
        "`taskforce audit`.",
        schema=AuditEvent,
    )
    return broker


_KEY = {
    "type": "string",
    "pattern": r"^[0-9]{3}$",
    "description": "The record key: the event's `municipality_code`, so that one "
    "municipality's events stay in order on one partition.",
}
_DLQ_KEY = {
    "type": "string",
    "description": "The original record key, CPR-like numbers masked.",
}
_REASONS = [
    "invalid_json",
    "invalid_encoding",
    "cpr_number",
    "unknown_event_type",
    "wrong_topic",
    "unsupported_schema_version",
    "invalid_event",
    "undecodable",
    "output_too_large",
    "output_invalid",
    "output_not_authorized",
]
_DLQ_HEADERS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "reason": {"type": "string", "enum": _REASONS, "description": "Why the record was refused."},
        "reason_detail": {
            "type": "string",
            "description": "Field locations and messages; never the rejected values.",
        },
        "original_topic": {"type": "string", "description": "The topic the record came from."},
        "original_partition": {"type": "string", "pattern": r"^\d+$",
                               "description": "Present for a rejected input record."},
        "original_offset": {"type": "string", "pattern": r"^\d+$",
                            "description": "Present for a rejected input record."},
        "original_size": {"type": "string", "pattern": r"^\d+$",
                          "description": "For a refused output record: its size in bytes."},
        "key_truncated_from": {
            "type": "string",
            "pattern": r"^\d+$",
            "description": "The original key's length in bytes, when it was cut.",
        },
        "rejected_by": {"type": "string", "description": "The service that refused it."},
        "value_truncated_from": {
            "type": "string",
            "pattern": r"^\d+$",
            "description": "The original value's length in bytes, when it was cut.",
        },
    },
    "required": [
        "reason",
        "reason_detail",
        "original_topic",
        "rejected_by",
    ],
}


def _add_keys_and_headers(document: dict[str, Any]) -> None:
    """Add what FastStream 0.7 cannot declare: record keys and the DLQ headers.

    FastStream also points every message's correlation id at its own `correlation_id`
    header; the contract carries it in the envelope instead, and a dead letter has none.
    """
    dlq_channel = document["channels"][channel_id(topics.DLQ, SEND)]
    dlq_refs = {ref["$ref"].rsplit("/", 1)[-1] for ref in dlq_channel["messages"].values()}
    for name, message in document["components"]["messages"].items():
        is_dlq = name in dlq_refs
        message["bindings"] = {
            "kafka": {"key": _DLQ_KEY if is_dlq else _KEY, "bindingVersion": "0.5.0"},
        }
        if is_dlq:
            message["headers"] = _DLQ_HEADERS
            message["contentType"] = "application/octet-stream"
            message.pop("correlationId", None)
        else:
            message["correlationId"] = {
                "location": "$message.payload#/correlation_id",
                "description": "The envelope's optional `correlation_id`.",
            }


_COMPONENT_KEY = re.compile(r"[^\w.\-]", re.ASCII)


def _rename_components(document: dict[str, Any]) -> None:
    """Make component names match AsyncAPI's `^[\\w\\d\\.\\-_]+$` (FastStream joins with ':')."""
    renamed: dict[str, str] = {}
    for kind in ("messages", "schemas"):
        section = document["components"][kind]
        for name in list(section):
            new = _COMPONENT_KEY.sub(".", name)
            if new != name:
                if new in section:
                    raise ValueError(f"component name clash: {name!r} -> {new!r}")
                section[new] = section.pop(name)
                renamed[f"#/components/{kind}/{quote(name, safe='~:._-')}"] = f"#/components/{kind}/{new}"

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref in renamed:
                node["$ref"] = renamed[ref]
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for value in node:
                visit(value)

    visit(document)


_AUDIT_KEY = {
    "type": "string",
    "pattern": r"^([0-9]{3}|\*)$",
    "description": "The record key: the `municipality_code` the access concerned, or `*` when it "
    "named none (a sign-in, a malformed path), so one municipality's audit stays in order.",
}


def _add_audit_key(document: dict[str, Any]) -> None:
    """The audit trail's key may be `*` besides a municipality code."""
    channel = document["channels"][channel_id(topics.AUDIT, SEND)]
    for ref in channel["messages"].values():
        name = ref["$ref"].rsplit("/", 1)[-1]
        document["components"]["messages"][name]["bindings"]["kafka"]["key"] = _AUDIT_KEY


def build_document() -> dict[str, Any]:
    """The AsyncAPI 3.0 document as plain JSON data.

    FastStream warns (`RuntimeWarning`) when two channels, operations or payload schemas
    share a name and one overwrites the other; here that is an error, not a silent loss.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        specification = AsyncAPI(
            build_broker(),
            title=TITLE,
            version=VERSION,
            description=DESCRIPTION,
            schema_version="3.0.0",
        ).to_specification()
        document: dict[str, Any] = json.loads(specification.to_json())
    _add_keys_and_headers(document)
    _add_audit_key(document)
    _rename_components(document)
    return document
