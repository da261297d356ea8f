"""Intake with FastStream's default one-in-flight subscriber, for comparison with batching.

    python -m bench.single

The same composition as `python -m services.intake` (`services.intake.app.compose`: runtime,
engine, reducers, routes, settings), served the same way; the only difference is the
subscriber (`build_app(..., batched=False)`): a plain (non-batch) one that hands every
message on its own to the engine's prepare, then apply. Its offsets are committed after each
message's writes (the same ack policy as the service), so both give the same guarantees and
differ only in how many records share a round trip.
"""

from __future__ import annotations

from services.common.serving import build_app, serve
from services.common.settings import load_settings
from services.intake.app import compose


def main() -> None:
    settings = load_settings("intake")
    serve(build_app(compose(settings), batched=False), settings)


if __name__ == "__main__":
    main()
