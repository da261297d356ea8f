"""The batch's progress fold (`_merge_progress`) says what `Progress.then` says, record by
record, whatever the order, repeats, time zones and topics of what the records say."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from schemas.reporting import StreamProgress
from services.reporting.domain.lifecycle import Progress
from services.reporting.processor import Decoded, _merge_progress, _settle_progress

ZONES = [UTC, timezone(timedelta(hours=1)), timezone(timedelta(hours=2)), timezone(timedelta(hours=-5))]

said = st.builds(
    StreamProgress,
    topic=st.sampled_from(["taskforce.notifications", "taskforce.applications", "taskforce.milestones"]),
    through=st.builds(lambda minutes, zone: (datetime(2024, 3, 31, 0, 0, tzinfo=UTC)
                                            + timedelta(minutes=minutes)).astimezone(zone),
                      st.integers(0, 6 * 60), st.sampled_from(ZONES)),
    caught_up=st.booleans(),
    partition=st.integers(0, 3),
    offset=st.integers(0, 50),
)


@given(st.lists(st.tuples(st.sampled_from(["480", "849"]), said), max_size=30))
def test_the_fold_is_progress_then_record_by_record(records: list[tuple[str, StreamProgress]]) -> None:
    decoded = Decoded()
    for code, word in records:
        _merge_progress(decoded, code, word)
    _settle_progress(decoded)

    expected: dict[tuple[str, str], Progress] = {}
    applied: dict[tuple[str, int], int] = {}
    for code, word in records:
        new = Progress(word.through, word.caught_up, word.partition, word.offset)
        old = expected.get((code, word.topic))
        expected[(code, word.topic)] = old.then(new) if old is not None else new
        applied[(word.topic, word.partition)] = max(applied.get((word.topic, word.partition), 0), word.offset)
    assert decoded.progress == expected
    assert decoded.applied == {where: offset for where, offset in applied.items() if offset > 0}
