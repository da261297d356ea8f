"""A service that dies after its N-th batch write, before producing or committing anything.

`python -m tests.faults.crash_after_write <service> <N>` runs the service exactly as
`python -m services.<service>` does, with one fault installed from outside: the process
exits with 137 (as after SIGKILL) right after the N-th batch's state writes landed in the
store, before that batch's output records are produced and its offsets committed. On restart
the batch is read again, so the test sees whether a write without its commit double-counts.

The production code knows nothing of this: the fault wraps the step that ends with the
writes (the projection engine's `_apply`; the reporting processor's `_note_progress`, after
its state writes and before its summaries), and only this harness installs it.
"""

from __future__ import annotations

import functools
import importlib
import os
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from services.common.cli import service_cli
from services.common.projection import ProjectionEngine
from services.reporting.processor import SummaryProcessor

SERVICES = ("intake", "analysis", "followup", "reporting")


def _wrote_entities(engine: Any, written_before: int) -> bool:
    """A projection batch of only progress notes writes no entity: it does not count."""
    return bool(engine.batches_written != written_before)


def _always(_processor: Any, _written_before: int) -> bool:
    return True


#: Per kind of service: the class, the method whose return means "this batch's state is
#: written", and whether a given call wrote.
WRITE_STEPS: dict[str, tuple[type, str, Callable[[Any, int], bool]]] = {
    "projection": (ProjectionEngine, "_apply", _wrote_entities),
    "reporting": (SummaryProcessor, "_note_progress", _always),
}


def die_after(owner: type, method: str, wrote: Callable[[Any, int], bool], writes: int) -> None:
    """Make `owner.method` end the process after its `writes`-th call that wrote a batch."""
    original: Callable[..., Awaitable[Any]] = getattr(owner, method)
    seen = {"writes": 0}

    @functools.wraps(original)
    async def wrapped(self: Any, *args: Any, **kwargs: Any) -> Any:
        before = getattr(self, "batches_written", 0)
        result = await original(self, *args, **kwargs)
        if wrote(self, before):
            seen["writes"] += 1
            if seen["writes"] == writes:
                os._exit(137)
        return result

    setattr(owner, method, wrapped)


def main(argv: list[str]) -> None:
    service, writes = argv[0], int(argv[1])
    if service not in SERVICES or writes < 1:
        raise SystemExit(f"usage: python -m tests.faults.crash_after_write {{{','.join(SERVICES)}}} N>=1")
    owner, method, wrote = WRITE_STEPS["reporting" if service == "reporting" else "projection"]
    die_after(owner, method, wrote, writes)
    app = importlib.import_module(f"services.{service}.app")
    service_cli(service, app.compose)(args=[], prog_name=f"services.{service}")


if __name__ == "__main__":
    main(sys.argv[1:])
