"""A stand-in for an aiokafka ConsumerRecord in unit tests: the fields the batch steps and
the dead-letter guard read."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Record:
    topic: str
    value: bytes | None
    key: bytes | None
    partition: int = 0
    offset: int = 0
