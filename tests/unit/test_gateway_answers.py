"""The gateway's answer body: byte for byte what json.dumps makes of the per-item answers."""

from __future__ import annotations

import json
import uuid

import pytest

from services.gateway.app import EventsAnswer, _events_answer, _item_answer
from services.gateway.items import Accepted, Refused

pytestmark = pytest.mark.unit


def accepted(index: int, line: int | None = None) -> Accepted:
    return Accepted(index, line, str(uuid.uuid4()), "notification.received", "taskforce.notifications", "480",
                    b"{}")


VERDICTS = [
    accepted(0),
    accepted(1, 2),
    Refused(2, 3, None, "invalid_json", 'value is not JSON: "quoted" \\ æøå \u2028', ()),
    Refused(3, None, str(uuid.uuid4()), "invalid_event", "data.urgent: Input should be a valid boolean",
            ("data.urgent", "<unknown field>")),
    Refused(4, None, str(uuid.uuid4()), "not_acknowledged", "send it again", retry=True),
    Refused(5, None, str(uuid.uuid4()), "not_in_scope", "municipality_code: ...", ("municipality_code",),
            municipality="849"),
    accepted(6, 9),
]


@pytest.mark.parametrize("verdicts", [VERDICTS, VERDICTS[:1], VERDICTS[2:3], []])
def test_the_answer_is_what_json_dumps_makes_of_it(verdicts) -> None:
    done = sum(isinstance(v, Accepted) for v in verdicts)
    expected = json.dumps({"accepted": done, "rejected": len(verdicts) - done,
                           "items": [_item_answer(v) for v in verdicts]}, separators=(",", ":")).encode()
    assert _events_answer(verdicts) == expected
    EventsAnswer.model_validate_json(_events_answer(verdicts))  # and it is what the document says
