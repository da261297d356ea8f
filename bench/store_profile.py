"""Where the embedded store spends its CPU: py-spy sampling nx-27017 over a measured window.

nx-27017 answers each command on a worker thread, which cProfile in the server's main thread
would not see; py-spy samples every thread of the running process from outside, without
restarting it. It is pinned in tools/bench-requirements.txt (`make bench` installs it) and needs
to be allowed to read the process (ptrace); without it the phase's figures stand without a
profile and say why.
"""

from __future__ import annotations

import contextlib
import re
import signal
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Samples per second: enough for shares of a few per cent over a minute, cheap for the store.
RATE_HZ = 50
#: The store operations, told by the first neosqlite `Collection` method on a sample's stack.
_OPERATION_FILE = "neosqlite/collection/__init__.py"
#: Packages by the path fragment of a frame's file (own time: the innermost frame).
_PACKAGES = {"nx_27017/wire_protocol": "wire protocol", "bson/": "BSON", "nx_27017/": "nx-27017 commands",
             "neosqlite/": "neosqlite (queries, documents, SQL)", "json/": "JSON", "asyncio/": "asyncio",
             "threading": "threads", "concurrent/": "threads", "copy.py": "deepcopy"}


_LINE = re.compile(r":\d+\)$")


def py_spy() -> Path:
    return Path(sys.executable).with_name("py-spy")


@dataclass
class StoreProfile:
    """py-spy recording one process into `out` (its collapsed-stack 'raw' format) while open."""

    pid: int
    out: Path
    error: str | None = None
    _process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self) -> None:
        if not py_spy().exists():
            self.error = "py-spy is not installed (make bench installs tools/bench-requirements.txt)"
            return
        self._process = subprocess.Popen(
            [str(py_spy()), "record", "--pid", str(self.pid), "--rate", str(RATE_HZ), "--format", "raw",
             "--output", str(self.out), "--nonblocking", "--threads"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def stop(self) -> dict[str, Any] | None:
        """End the recording; the summary of what it saw, or None (then `error` says why)."""
        if self._process is None:
            return None
        with contextlib.suppress(ProcessLookupError):
            self._process.send_signal(signal.SIGINT)
        try:
            _out, err = self._process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            self._process.kill()
            _out, err = self._process.communicate()
        if not self.out.exists():
            self.error = f"py-spy wrote no profile: {err.decode(errors='replace').strip()[-300:]}"
            return None
        return summarise(self.out.read_text(encoding="utf-8", errors="replace"))


def summarise(collapsed: str, top: int = 8) -> dict[str, Any] | None:
    """Shares of the samples: by store operation (inclusive), by package and by function (own)."""
    operations: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    functions: Counter[str] = Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        samples = int(count)
        frames = [frame for frame in stack.split(";") if not frame.startswith(("thread ", "process "))]
        if not frames:
            continue
        total += samples
        operations[_operation(frames)] += samples
        packages[_package(frames[-1])] += samples
        functions[_LINE.sub(")", frames[-1])] += samples
    if not total:
        return None

    def shares(counter: Counter[str], limit: int | None = None) -> list[list[Any]]:
        return [[name, round(n / total, 3)] for name, n in counter.most_common(limit)]

    return {"samples": total, "rate_hz": RATE_HZ, "operations": shares(operations, top),
            "packages": shares(packages, top), "functions": shares(functions, top)}


def shares_text(shares: list[list[Any]]) -> str:
    """Shares of a profile summary as text: "name 62%; other 21%"."""
    return "; ".join(f"{name} {share:.0%}" for name, share in shares)


def _operation(frames: list[str]) -> str:
    for frame in frames:
        if _OPERATION_FILE in frame:
            return frame.split(" ", 1)[0].removeprefix("Collection.")
    if any("handle_command" in frame for frame in frames):
        return "command handling around them (id conversion, copies, replies)"
    return "connections (reading, BSON, the event loop)"


def _package(frame: str) -> str:
    for fragment, name in _PACKAGES.items():
        if fragment in frame:
            return name
    return "other"
