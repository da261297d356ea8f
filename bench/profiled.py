"""A service under cProfile, from its first batch to its exit (start-up left out).

    python -m bench.profiled {intake|analysis|followup|reporting|gateway} OUTPUT.prof

`services.<name>` runs unchanged; the profiler is switched on when the first batch is handed
to its pipeline (`BatchPipeline.submit`) — for the gateway, when the first request's body is
read (`services.gateway.app._read_body`) — and the statistics are written when the service
exits (SIGTERM). cProfile follows the event loop's thread, so the batches' tasks are in it.
"""

from __future__ import annotations

import cProfile
import runpy
import sys
from typing import Any

from services.common.pipeline import BatchPipeline

SERVICES = ("intake", "analysis", "followup", "reporting", "gateway")


def main(name: str, output: str) -> None:
    profiler = cProfile.Profile()
    original = BatchPipeline.submit
    state = {"on": False}

    if name == "gateway":
        from services.gateway import app

        read_body = app._read_body

        async def first_body(request: Any, limit: int) -> bytes:
            if not state["on"]:
                state["on"] = True
                profiler.enable()
            return await read_body(request, limit)

        app._read_body = first_body  # type: ignore[assignment]  # looked up by name at each request

    async def submit(self: BatchPipeline, records: list[Any]) -> None:
        if not state["on"]:
            state["on"] = True
            profiler.enable()
        await original(self, records)

    BatchPipeline.submit = submit  # type: ignore[method-assign]
    sys.argv = [sys.argv[0]]
    try:
        runpy.run_module(f"services.{name}", run_name="__main__", alter_sys=True)
    finally:
        profiler.disable()
        profiler.dump_stats(output)


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in SERVICES:
        sys.exit(f"usage: python -m bench.profiled {{{'|'.join(SERVICES)}}} OUTPUT.prof")
    main(sys.argv[1], sys.argv[2])
