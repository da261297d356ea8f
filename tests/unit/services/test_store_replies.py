"""Reading an unordered upsert's reply: duplicate keys are the guard's refusals, anything else raises."""

from __future__ import annotations

import pytest
from pymongo.errors import BulkWriteError

from services.common.store import DUPLICATE_KEY, refused_indexes


def test_a_clean_reply_has_nothing_stale() -> None:
    assert refused_indexes({"ok": 1, "n": 3, "nModified": 1}) == set()


def test_duplicate_keys_are_the_documents_their_guard_refused() -> None:
    reply = {"ok": 1, "n": 1, "writeErrors": [
        {"index": 0, "code": DUPLICATE_KEY, "errmsg": "E11000 duplicate key"},
        {"index": 2, "code": DUPLICATE_KEY, "errmsg": "E11000 duplicate key"},
    ]}
    assert refused_indexes(reply) == {0, 2}


def test_any_other_write_error_is_raised_with_every_error() -> None:
    errors = [{"index": 0, "code": DUPLICATE_KEY, "errmsg": "E11000"},
              {"index": 1, "code": 66, "errmsg": "immutable field '_id'"}]
    with pytest.raises(BulkWriteError) as raised:
        refused_indexes({"ok": 1, "writeErrors": errors})
    assert raised.value.details["writeErrors"] == errors


@pytest.mark.parametrize("reply", [
    {"ok": 1, "n": 1, "writeConcernError": {"code": 64, "errmsg": "waiting for replication timed out"}},
    {"writeErrors": [], "writeConcernErrors": [{"code": 64, "errmsg": "timed out"}]},  # a BulkWriteError's
])
def test_a_write_concern_error_is_raised(reply: dict[str, object]) -> None:
    with pytest.raises(BulkWriteError) as raised:
        refused_indexes(reply)
    assert raised.value.details["writeConcernErrors"][0]["code"] == 64
