"""Intake with FastStream's default one-in-flight subscriber, for comparison with batching.

    python -m bench.single

The same runtime, engine, reducers, HTTP app and settings as `python -m services.intake`;
the only difference is the subscriber: a plain (non-batch) `broker.subscriber(...)` that
hands every message on its own to `Runtime.process` (the engine's prepare, then apply).
Its offsets are committed after each message's writes (the same ack policy as the service),
so both give the same guarantees and differ only in how many records share a round trip.
"""

from __future__ import annotations

from typing import Any

from faststream import AckPolicy
from faststream.kafka.annotations import KafkaMessage

from services.common.projection import ProjectionEngine
from services.common.runtime import BatchSteps, build_app, build_runtime, serve
from services.common.settings import load_settings
from services.intake import api
from services.intake.app import INPUT_TOPICS
from services.intake.projections import KINDS


async def _raw_decoder(message: Any) -> Any:
    """Leave the bytes alone, as the service does: validation is the engine's."""
    return None


def main() -> None:
    settings = load_settings("intake")
    runtime = build_runtime(settings, INPUT_TOPICS)
    engine = ProjectionEngine(settings, runtime.db, runtime.metrics, KINDS)
    runtime.startup.append(engine.setup)
    runtime.steps = BatchSteps(engine.prepare, engine.apply)

    async def consume(message: KafkaMessage) -> None:
        await runtime.process([message.raw_message])  # type: ignore[list-item]

    runtime.subscriber = subscriber = runtime.broker.subscriber(
        *runtime.input_topics,
        group_id=settings.group_id,
        auto_offset_reset="earliest",
        ack_policy=AckPolicy.NACK_ON_ERROR,
        decoder=_raw_decoder,
    )
    subscriber(consume)
    serve(build_app(runtime, [api.router(runtime.db)]), settings)


if __name__ == "__main__":
    main()
