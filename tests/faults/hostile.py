"""A seeded fuzzer of records that EVENTS.md makes invalid, built from valid demo events.

Every record `invalid_records` yields breaks the contract in a way the page states plainly
(bad JSON, not UTF-8, unknown type or one from another topic, a missing or wrongly typed
field — JSON types strict —, a value out of range, a naive timestamp, an unknown field in
`data`, a CPR-like number in any string), so each one must reach `taskforce.dlq`. Cases the
contract leaves open (unknown envelope fields, `1.0` for an integer, empty identifiers) are
left out on purpose: a failure must mean a bug, not a reading.
"""

from __future__ import annotations

import copy
import json
import random
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from tests.faults.harness import COMMANDS, TOPIC_OF_TYPE

CPRS = ("010190-1234", "3112994321", "150505-0505", "2902001111")
#: The 1.1 spellings: glued to letters, other separators, full-width digits and spaces.
CPR_SPELLINGS = ("barn_0101901234", "CPR3112994321", "150505 0505", "290200/1111", "010190.1234",
                 "０１０１９０１２３４", "３１１２９９\u3000４３２１", "x290200\u00a01111y")
WRONG_TOPIC = {  # a valid event type, sent to a topic it does not belong on
    "taskforce.applications": "notification.received",
    "taskforce.notifications": "case_review.completed",
    "taskforce.case-reviews": "milestone.updated",
    "taskforce.milestones": "course.started",
}
#: Per event type: (data field, wrong-typed or out-of-range values).
DATA_BREAKS: dict[str, list[tuple[str, list[Any]]]] = {
    "application.submitted": [("application_id", [7, None, ["a"]]),
                              ("reasons", [[], ["bogus"], "rising_caseload", [1]])],
    "application.decided": [("decision", ["maybe", True, None]),
                            ("expected_start", ["2022-02-30", "soon", "2022-3-1", 20220301])],
    "course.started": [("planned_end", ["2022-13-01", 20221231, "31/12/2022"]), ("course_id", [1, {}])],
    "course.completed": [("course_id", [None, 12, []])],
    "notification.received": [("urgent", ["true", 1, None, "false", 0]),
                              ("reporter", ["teacher", 3, ""]), ("child_ref", [12345, None, {"a": 1}]),
                              ("notification_id", [99, False])],
    "notification.assessed": [("outcome", ["done", None, 1]), ("notification_id", [1.5, ["x"]])],
    "case_review.completed": [("phase", ["middle", 1]), ("ratings", [[3, 3, 3, 3], "3", None]),
                              ("legal_findings", ["none", [{"code": "x", "severity": "critical"}],
                                                  [{"severity": "minor"}],
                                                  [{"code": 1, "severity": "minor"}]]),
                              ("case_ref", [1, None])],
    "development_plan.adopted": [("goals", [[], [{"goal_id": "g", "title": "t", "milestones": []}], "g",
                                            [{"goal_id": "g", "title": "t",
                                              "milestones": [{"milestone_id": "m", "title": "t"}]}],
                                            [{"goal_id": "g", "title": "t",
                                              "milestones": [{"milestone_id": "m", "title": "t",
                                                              "due_on": "2022-02-30"}]}]])],
    "milestone.updated": [("status", ["done", "ACHIEVED", None, 4]), ("milestone_id", [1, None])],
    "followup.meeting_held": [("cases_rereviewed", [-1, "3", True, None, 2.5, [3]])],
}
RATING_BREAKS = [0, 5, -1, "3", None, True, 100]
ENVELOPE_BREAKS: list[tuple[str, list[Any]]] = [
    ("event_id", [123, "not-a-uuid", None, ["x"]]),
    ("schema_version", ["1", True, 2, 0, None]),
    ("occurred_at", ["2022-03-01T10:00:00", "2022-03-01 10:00:00", "2022-03-01", 1646128800, "yesterday",
                     "2022-13-01T10:00:00+01:00", None]),
    ("municipality_code", [480, "48", "4800", "abc", None, ""]),
    ("source", ["", 5, None, "s" * 101]),
    ("correlation_id", [5, ["c"], {"c": 1}]),
    ("event_type", ["notification.deleted", 42, None, "", "NOTIFICATION.RECEIVED"]),
    ("data", [[], "data", None, 7]),
]
REQUIRED_ENVELOPE = ("event_id", "event_type", "schema_version", "occurred_at", "municipality_code",
                     "source", "data")


@dataclass(frozen=True)
class Hostile:
    topic: str  # unprefixed
    key: bytes | None
    value: bytes | None
    kind: str


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


class Fuzzer:
    def __init__(self, templates: list[dict[str, Any]], seed: int) -> None:
        self.rng = random.Random(seed)
        self.by_topic: dict[str, list[dict[str, Any]]] = {}
        for event in templates:
            self.by_topic.setdefault(TOPIC_OF_TYPE[event["event_type"]], []).append(event)
        self.cases: list[tuple[str, Callable[[str, dict[str, Any]], bytes | None]]] = [
            ("truncated_json", self.truncated), ("wrong_type", self.wrong_type),
            ("envelope", self.envelope), ("missing_field", self.missing_field),
            ("unknown_field", self.unknown_field), ("cpr", self.cpr), ("naive_time", self.naive_time),
            ("wrong_topic", self.wrong_topic), ("not_utf8", self.not_utf8), ("huge_string", self.huge_string),
            ("deep_nesting", self.deep_nesting), ("not_an_object", self.not_an_object),
            ("rating", self.rating), ("garbage", self.garbage), ("over_limit", self.over_limit),
        ]
        self.weights = [14, 16, 14, 8, 8, 12, 5, 5, 5, 1, 1, 3, 4, 4, 4]

    def fresh(self, topic: str) -> dict[str, Any]:
        event = copy.deepcopy(self.rng.choice(self.by_topic[topic]))
        event["event_id"] = str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
        return event

    def records(self, count: int, topics: list[str]) -> Iterator[Hostile]:
        for _ in range(count):
            kind, make = self.rng.choices(self.cases, weights=self.weights)[0]
            topic = self.rng.choice(topics)
            source_topic = topic if topic in self.by_topic else self.rng.choice(sorted(self.by_topic))
            event = self.fresh(source_topic)
            key = self.key(event)
            value = make(topic, event)
            if value is None and key is None:  # a tombstone needs a key
                key = b"480"
            yield Hostile(topic, key, value, kind)

    def key(self, event: dict[str, Any]) -> bytes | None:
        draw = self.rng.random()
        if draw < 0.05:
            return None
        if draw < 0.08:
            return self.rng.choice(CPRS).encode()  # a CPR in the key must not leak either
        if draw < 0.1:
            return bytes(self.rng.getrandbits(8) for _ in range(8))
        return str(event["municipality_code"]).encode()

    # --- the cases ------------------------------------------------------------------------

    def truncated(self, _topic: str, event: dict[str, Any]) -> bytes:
        raw = _dumps(event)
        return raw[: self.rng.randint(0, len(raw) - 1)]

    def wrong_type(self, topic: str, event: dict[str, Any]) -> bytes:
        field, values = self.rng.choice(DATA_BREAKS[event["event_type"]])
        event["data"][field] = self.rng.choice(values)
        return _dumps(self._on(topic, event))

    def envelope(self, topic: str, event: dict[str, Any]) -> bytes:
        field, values = self.rng.choice(ENVELOPE_BREAKS)
        event[field] = self.rng.choice(values)
        return _dumps(self._on(topic, event))

    def missing_field(self, topic: str, event: dict[str, Any]) -> bytes:
        if self.rng.random() < 0.5:
            del event[self.rng.choice(REQUIRED_ENVELOPE)]
        else:
            del event["data"][self.rng.choice(sorted(event["data"]))]
        return _dumps(self._on(topic, event))

    def unknown_field(self, topic: str, event: dict[str, Any]) -> bytes:
        name = self.rng.choice(["comment", "child_name", "extra", "Urgent", "priority", "note"])
        event["data"][name] = self.rng.choice(["x", 1, True, None, {"nested": [1, 2]}, "Ole Hansen"])
        return _dumps(self._on(topic, event))

    def cpr(self, topic: str, event: dict[str, Any]) -> bytes:
        cpr = self.rng.choice(CPRS)
        where = self.rng.randrange(6)
        data = event["data"]
        if where == 0:
            string_fields = [k for k, v in data.items() if isinstance(v, str)]
            data[self.rng.choice(string_fields)] = self.rng.choice(
                [cpr, f"barn {cpr}", f"{cpr}/x", *CPR_SPELLINGS])
        elif where == 1:
            event["source"] = f"dubu {cpr}"
        elif where == 2:
            event["correlation_id"] = cpr
        elif where == 3:
            data["cpr"] = cpr  # also an unknown field
        elif where == 4:
            data[cpr] = "x"  # in a key
        else:
            escaped = "".join(f"\\u{ord(c):04x}" for c in cpr)  # hidden behind JSON escapes
            string_fields = [k for k, v in data.items() if isinstance(v, str)]
            data[self.rng.choice(string_fields)] = "CPRESC"
            return _dumps(self._on(topic, event)).replace(b"CPRESC", escaped.encode())
        return _dumps(self._on(topic, event))

    def naive_time(self, topic: str, event: dict[str, Any]) -> bytes:
        event["occurred_at"] = event["occurred_at"][:19]  # drop the offset
        return _dumps(self._on(topic, event))

    def wrong_topic(self, topic: str, event: dict[str, Any]) -> bytes:
        if topic == COMMANDS:
            return _dumps(event)  # an input event is not a command
        other = self.fresh(TOPIC_OF_TYPE[WRONG_TOPIC[topic]])
        return _dumps(other)

    def not_utf8(self, topic: str, event: dict[str, Any]) -> bytes:
        raw = _dumps(self._on(topic, event))
        if self.rng.random() < 0.5:
            text = json.dumps(event, ensure_ascii=False).replace('"source": "', '"source": "Æblø ')
            return text.encode("latin-1", "replace")
        cut = raw.index(b'"source":"') + len(b'"source":"')
        return raw[:cut] + self.rng.choice([b"\xff\xfe", b"\xc3\x28", b"\xed\xa0\x80", b"\x80"]) + raw[cut:]

    def huge_string(self, topic: str, event: dict[str, Any]) -> bytes:
        size = self.rng.randint(20_000, 200_000)
        if self.rng.random() < 0.5:
            event["source"] = "s" * size  # 1–100 chars
        else:
            event["data"]["blob"] = "b" * size  # an unknown field
        return _dumps(self._on(topic, event))

    def deep_nesting(self, topic: str, event: dict[str, Any]) -> bytes:
        depth = self.rng.randint(1_000, 20_000)
        if self.rng.random() < 0.5:
            return b"[" * depth + b"]" * depth
        event["data"]["deep"] = "DEEP"  # an unknown field in `data`, nested past any parser's limit
        nested = b'{"a":' * depth + b"1" + b"}" * depth
        return _dumps(self._on(topic, event)).replace(b'"DEEP"', nested)

    def over_limit(self, topic: str, event: dict[str, Any]) -> bytes:
        """1.1's limits: a string of 201 characters, a list of 201 items, a value over 256 KiB."""
        draw = self.rng.randrange(3)
        if draw == 0:
            string_fields = [k for k, v in event["data"].items() if isinstance(v, str)]
            if string_fields:
                event["data"][self.rng.choice(string_fields)] = "i" * 201
            else:
                event["correlation_id"] = "c" * 201
        elif draw == 1:
            event["correlation_id"] = "c" * self.rng.randint(256 * 1024, 300 * 1024)
        else:
            event["data"]["extra"] = ["x"] * 201  # also unknown: the list limit is checked either way
        return _dumps(self._on(topic, event))

    def not_an_object(self, _topic: str, _event: dict[str, Any]) -> bytes | None:
        return self.rng.choice([b"[]", b'"event"', b"42", b"null", b"true", b"", b"   ", None, b"{}"])

    def rating(self, topic: str, event: dict[str, Any]) -> bytes:
        if event["event_type"] != "case_review.completed":
            return self.wrong_type(topic, event)
        dim = self.rng.choice(sorted(event["data"]["ratings"]))
        if self.rng.random() < 0.2:
            del event["data"]["ratings"][dim]
        else:
            event["data"]["ratings"][dim] = self.rng.choice(RATING_BREAKS)
        return _dumps(self._on(topic, event))

    def garbage(self, _topic: str, _event: dict[str, Any]) -> bytes:
        size = self.rng.randint(1, 400)
        return bytes(self.rng.getrandbits(8) for _ in range(size)) + b"\xff"

    def _on(self, topic: str, event: dict[str, Any]) -> dict[str, Any]:
        """An event broken for `topic`: when fuzzing the commands topic, wrap it as a command."""
        if topic != COMMANDS:
            return event
        return {**event, "event_type": "summary.requested",
                "data": {"period": self.rng.choice(["2022H3", "22H1", 2022, None]), "final": True}}
