"""The benchmark's other pure helpers: /proc parsing, profile summaries, workload, report."""

from __future__ import annotations

import json

import pytest

from bench import national, workload
from bench.findings import notes
from bench.proc import parse_stat_cpu, parse_status_kb
from bench.profiling import by_package, package_of, short_name, top_functions
from bench.raw import entity_of, fold, utc_stamp
from bench.report import markdown
from schemas import topics
from schemas.decode import Rejection, decode

pytestmark = pytest.mark.unit


def test_cpu_seconds_come_from_utime_and_stime_even_with_odd_command_names() -> None:
    fields = ["S", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "250", "150", "0", "0"]
    stat = "1234 (python -m (odd) name) " + " ".join(fields)
    assert parse_stat_cpu(stat, ticks=100) == 4.0


def test_status_lines_are_read_in_kilobytes() -> None:
    status = "Name:\tpython\nVmHWM:\t  123456 kB\nVmRSS:\t   98765 kB\n"
    assert parse_status_kb(status, "VmHWM") == 123456
    assert parse_status_kb(status, "VmRSS") == 98765
    assert parse_status_kb(status, "VmSwap") is None


def test_profile_rows_are_grouped_by_package_without_idle_time() -> None:
    rows = [
        ("/x/site-packages/pydantic/main.py", 1, "validate", 3.0, 3.0, 10),
        ("/work/main/services/common/projection.py", 2, "_reduce", 1.0, 4.0, 10),
        ("~", 0, "<method 'poll' of 'select.epoll' objects>", 100.0, 100.0, 5),
        ("~", 0, "<built-in method builtins.isinstance>", 1.0, 1.0, 50),
    ]
    shares = by_package(rows)
    assert shares == {"pydantic": 0.6, "services.common.projection": 0.2, "builtins": 0.2}
    top = top_functions(rows[:2], limit=1)
    assert top[0]["function"] == "pydantic/main.py:1(validate)"
    assert top[0]["share"] == 0.75
    assert top_functions(rows[:2], limit=1, key="cumtime")[0]["share"] == 1.0


def test_package_and_short_names() -> None:
    assert package_of("/work/main/services/reporting/domain/lifecycle.py") == "services.reporting.domain"
    assert package_of("/work/main/schemas/periods.py") == "schemas (periods/rules)"
    assert package_of("/work/main/schemas/decode.py") == "schemas (decode/validate)"
    assert package_of("~") == "builtins"
    assert package_of("~", "<method 'validate_json' of 'pydantic_core._pydantic_core.SchemaValidator'>") \
        == "pydantic"
    assert package_of("~", "<method 'send' of '_socket.socket' objects>") == "socket I/O"
    assert short_name("/work/main/services/common/runtime.py", 88, "process") == \
        "services/common/runtime.py:88(process)"


def test_workload_is_deterministic_valid_and_keyed_by_municipality() -> None:
    first = list(workload.intake_events(301))
    assert first == list(workload.intake_events(301))
    assert len(first) == 301
    for generator in (first, workload.analysis_events(50), workload.followup_events(80)):
        for topic, key, value in generator:
            event = decode(topic, value)
            assert not isinstance(event, Rejection), event
            assert key == event.municipality_code.encode()


def test_national_workload_is_valid_keyed_and_names_each_notification_twice() -> None:
    replay = national.replay(municipalities=6, years=0.03)  # a small scale: ~1,200 records
    assert replay.by_topic()[topics.NOTIFICATIONS] == 2 * replay.volumes.as_dict()["notifications"]
    kinds: dict[str, list[str]] = {}
    for topic, key, value in replay.records:
        event = decode(topic, value)
        assert not isinstance(event, Rejection), event
        assert key == event.municipality_code.encode()
        if event.event_type.startswith("notification."):
            kinds.setdefault(json.loads(value)["data"]["notification_id"], []).append(event.event_type)
    assert all(sorted(v) == ["notification.assessed", "notification.received"] for v in kinds.values())
    assert set(replay.expected) == {key.decode() for _t, key, _v in replay.records}


def test_every_notification_of_the_intake_workload_is_received_and_assessed_once() -> None:
    events = [json.loads(v) for _t, _k, v in workload.intake_events(2015)]
    kinds: dict[str, list[str]] = {}
    for event in events:
        if event["event_type"].startswith("notification."):
            kinds.setdefault(event["data"]["notification_id"], []).append(event["event_type"])
    assert len(kinds) == 1000
    assert all(sorted(v) == ["notification.assessed", "notification.received"] for v in kinds.values())
    assert len({e["event_id"] for e in events}) == len(events)


def test_followup_workload_has_the_requested_size() -> None:
    assert len(workload.followup_events(1000)) == 1000


def test_raw_consumer_keys_documents_like_the_services() -> None:
    event = {"event_type": "milestone.updated", "event_id": "e",
             "data": {"plan_id": "p", "milestone_id": "m"}}
    assert entity_of(event) == ("milestones", "p/m")
    assert entity_of({"event_type": "course.started", "data": {}}) == ("courses", "course")
    state: dict[str, dict[str, str]] = {}
    fold(state, {"event_type": "notification.received", "occurred_at": "2021-01-02T00:00:00+00:00",
                 "data": {"urgent": False}})
    fold(state, {"event_type": "notification.received", "occurred_at": "2021-01-01T00:00:00+00:00",
                 "data": {"urgent": True}})
    assert state["notification.received"]["urgent"] is True
    assert utc_stamp("2022-07-01T00:00:00+02:00") == "2022-06-30T22:00:00.000000Z"


def test_markdown_and_notes_of_a_results_document() -> None:
    results = {
        "schema": "taskforce-bench/1", "started_at": "2026-01-01T00:00:00+00:00", "duration_s": 60.0,
        "scale": {"bench_events": 20000},
        "machine": {"git_commit": "abc", "cpus": 2, "cpu_model": "x", "load_average_at_start": [1.0]},
        "services": {"intake": {"events": 20000, "events_per_s": 1000.0, "raw_events_per_s": 2000.0,
                                "throughput_ratio": 0.5, "cpu_s_per_event": 0.0002,
                                "raw_cpu_s_per_event": 0.0001, "cpu_per_event_ratio": 2.0,
                                "peak_rss_mb": 90.0,
                                # the fastest run's store CPU is quoted, wherever it stands
                                "runs": {"service": [{"events_per_s": 800.0,
                                                      "server_cpu_s_per_event": {"mongodb": 0.0002}},
                                                     {"events_per_s": 1000.0,
                                                      "server_cpu_s_per_event": {"mongodb": 0.00014}}],
                                         "raw": [{"server_cpu_s_per_event": {"mongodb": 0.00012}}]}}},
        "latency_s": {"500": {"p50": 0.5, "p95": 0.9, "p99": 1.5, "max": 1.6, "missing": 0,
                              "to_reporting_event": {"p50": 0.1, "p99": 0.3}}},
        "latency_whatif": {"fetch_max_wait_ms": 500, "latency_s": {"500": {"p50": 0.9, "p99": 2.8}}},
        "rss_growth_ratio": 1.0,
        "targets": [{"name": "intake: throughput ≥ 0.9 × raw", "value": 0.5, "limit": ">= 0.9",
                     "pass": False},
                    {"name": "p99 latency at 500/s < 1.0 s", "value": 1.5, "limit": "< 1.0", "pass": False}],
    }
    text = notes(results)
    assert any(n.startswith("intake misses a target: 0.5× raw throughput") for n in text)
    assert any(n.startswith("Why intake miss the throughput target") and "intake 140 µs / 120 µs" in n
               for n in text)
    assert any(n.startswith("Why the CPU per event of intake is above 1.5×") for n in text)
    frugal = json.loads(json.dumps(results))
    frugal["services"]["intake"]["cpu_per_event_ratio"] = 1.2
    assert not any(n.startswith("Why the CPU per event") for n in notes(frugal))
    assert any(n.startswith("Why the latency misses: at 500/s") and "p99 0.3 s" in n
               and "default fetch wait of 500 ms" in n and "p99 2.8 s" in n for n in text)
    met = dict(results, targets=results["targets"][:1])
    assert any(n.startswith("Latency at 500/s: p99 1.5 s") for n in notes(met))
    results["notes"] = text
    results["reporting_workloads"] = {"national": dict(
        results["services"]["intake"], events=170000, workload="the national replay")}
    page = markdown(results)
    assert "| intake | 20,000 | 1,000 | 2,000 | 0.50 | 200 | 100 | 2.00 | 90 |" in page
    assert "## Reporting on other workloads" in page
    results["targets"] = [{"name": "reporting on the national replay: CPU per event ≤ 1.5 × raw",
                           "value": 2.0, "limit": "<= 1.5", "pass": False}]
    national = [n for n in notes(results) if n.startswith("Reporting on the national replay misses")]
    assert len(national) == 1 and "2× raw (200 against 100 µs per event, 170,000 records" in national[0]
    assert "each batch's work per municipality" in national[0]  # the why of this workload
    results["targets"][0]["pass"] = True
    assert not [n for n in notes(results) if n.startswith("Reporting on the national replay misses")]
    assert "| the national replay | 170,000 | 1,000 | 2,000 | 0.50 | 200 | 100 | 2.00 | 90 |" in page
    assert "**FAIL**" in page
