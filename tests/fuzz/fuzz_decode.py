"""Coverage-guided fuzzing of the decode → DLQ path with atheris (`make fuzz`).

libFuzzer mutates record values, guided by which branches of `schemas.decode`,
`schemas.cpr` and `services.common.dlq` they reach, starting from a corpus of one valid event
of every type. For every input, on every consumed topic: nothing raises; an accepted event
holds no CPR-like number; a dead letter holds none either and fits its limits; masking is
idempotent. A failure stops the run with the input saved (libFuzzer's crash-* file).

    python tests/fuzz/fuzz_decode.py -max_total_time=180 run/fuzz/corpus
"""

from __future__ import annotations

import sys
from pathlib import Path

import atheris

with atheris.instrument_imports():
    from schemas import topics
    from schemas.cpr import contains_cpr, mask_cpr
    from schemas.decode import Rejection, decode
    from services.common.dlq import MAX_DLQ_KEY_BYTES, dead_letter, value_limit
    from services.common.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.support.cpr import spelled_cpr  # noqa: E402
from tests.support.records import Record  # noqa: E402
from tests.unit.schemas.examples import DECODABLE, encode, valid  # noqa: E402

TOPICS = [topics.APPLICATIONS, topics.NOTIFICATIONS, topics.CASE_REVIEWS, topics.MILESTONES,
          topics.COMMANDS, topics.REPORTING, topics.SUMMARIES]
SETTINGS = Settings(TASKFORCE_SERVICE="intake")  # type: ignore[call-arg]


def check(data: bytes) -> None:
    provider = atheris.FuzzedDataProvider(data)
    topic = TOPICS[provider.ConsumeIntInRange(0, len(TOPICS) - 1)]
    key = provider.ConsumeBytes(provider.ConsumeIntInRange(0, 32))
    raw = provider.ConsumeBytes(provider.remaining_bytes())
    result = decode(topic, raw)
    if isinstance(result, Rejection):
        letter = dead_letter(Record(topic, raw, key), result, SETTINGS)  # type: ignore[arg-type]
        for part in (letter.value, letter.key, *(v.encode() for v in letter.headers.values())):
            assert not spelled_cpr(part) and mask_cpr(part) == part, "a CPR-like number in a dead letter"
        assert len(letter.value) <= value_limit(SETTINGS) and len(letter.key) <= MAX_DLQ_KEY_BYTES
    else:
        assert not contains_cpr(raw), "an accepted event holds a CPR-like number"
    masked = mask_cpr(raw)
    assert mask_cpr(masked) == masked, "masking is not idempotent"


def seed_corpus(folder: Path) -> None:
    """One valid event of every type (behind a topic byte the provider reads first)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in DECODABLE:
        (folder / f"seed-{name}").write_bytes(b"\x00\x00" + encode(valid(name)))


def main() -> None:
    corpora = [Path(arg) for arg in sys.argv[1:] if not arg.startswith("-")]
    for folder in corpora:
        seed_corpus(folder)
    atheris.Setup(sys.argv, check)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
