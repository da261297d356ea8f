"""A service with a shorter Kafka fetch wait: the what-if of the latency measurement.

    python -m bench.tuned {intake|analysis|followup|reporting}

Runs `services.<name>` unchanged except that every FastStream subscriber gets
`fetch_max_wait_ms=BENCH_FETCH_MAX_WAIT_MS` (default 50) instead of aiokafka's 500. The
embedded broker answers a fetch only when its wait is over, even when records arrive
meanwhile, so each consumer hop adds up to the whole wait (real Kafka answers as soon as
`fetch_min_bytes` are there). This measures what the proposed setting would buy.
"""

from __future__ import annotations

import os
import runpy
import sys
from typing import Any

from faststream.kafka import KafkaBroker

SERVICES = ("intake", "analysis", "followup", "reporting")


def patch(fetch_max_wait_ms: int) -> None:
    original = KafkaBroker.subscriber

    def subscriber(self: KafkaBroker, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("fetch_max_wait_ms", fetch_max_wait_ms)
        return original(self, *args, **kwargs)

    KafkaBroker.subscriber = subscriber  # type: ignore[method-assign]


if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in SERVICES:
        sys.exit(f"usage: python -m bench.tuned {{{'|'.join(SERVICES)}}}")
    name = sys.argv[1]
    patch(int(os.environ.get("BENCH_FETCH_MAX_WAIT_MS", "50")))
    sys.argv = [sys.argv[0]]
    runpy.run_module(f"services.{name}", run_name="__main__", alter_sys=True)
