"""Servers for the fault scenarios, one cluster of service processes per test, and the table.

The servers are always the embedded ones started here (Tansu, and nx-27017 backed by a
directory so it can be stopped and restarted with its data): the scenarios stop and
restart the store process themselves, which an external server would not allow.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.faults import harness

COLUMNS = (
    ("scenario", "scenario"), ("kills", "kills survived"), ("lost", "events lost"),
    ("double", "double counts"), ("mismatches", "figure mismatches"), ("sent", "records sent"),
    ("dlq", "DLQ / invalid sent"), ("restarts", "restarts needed"),
    ("cpr_hits", "CPR hits"), ("seconds", "seconds"),
)


@pytest.fixture(scope="module")
def fault_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[harness.Servers]:
    stack = harness.start_servers(tmp_path_factory.mktemp("faults"))
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture
def clusters(fault_servers: harness.Servers, prefix: str) -> Iterator[Callable[..., harness.Cluster]]:
    """Make this test's cluster (its own topic prefix); its processes are stopped afterwards."""
    made: list[harness.Cluster] = []

    def make(name: str, tokens: dict[str, str] | None = None, **env: str) -> harness.Cluster:
        cluster = harness.Cluster(fault_servers, prefix, fault_servers.run_dir / name, tokens, **env)
        made.append(cluster)
        harness.CLUSTERS.append(cluster)
        return cluster

    yield make
    for cluster in made:
        cluster.stop()


def _cell(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.0f}"
    return str(value)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    if not harness.FIGURES:
        return
    rows = [[_cell(name)] + [_cell(figures.get(key)) for key, _ in COLUMNS[1:]]
            for name, figures in harness.FIGURES.items()]
    headers = [title for _, title in COLUMNS]
    widths = [max(len(headers[i]), *(len(row[i]) for row in rows)) for i in range(len(headers))]
    line = "  ".join
    terminalreporter.section("fault scenarios: nothing lost, nothing counted twice")
    terminalreporter.write_line(line(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
    terminalreporter.write_line(line("-" * w for w in widths))
    for row in rows:
        terminalreporter.write_line(line(c.ljust(w) for c, w in zip(row, widths, strict=True)))
    notes = [f"{name}: {figures['note']}" for name, figures in harness.FIGURES.items() if figures.get("note")]
    for note in notes:
        terminalreporter.write_line(note)
    if harness.CLUSTERS:
        terminalreporter.write_line(f"logs: {harness.CLUSTERS[0].stack.run_dir}")
