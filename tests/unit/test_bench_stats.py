"""The benchmark's pure arithmetic: percentiles, steady windows, ratios, targets, results schema."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bench.stats import (
    RESULTS_SCHEMA,
    Sample,
    Window,
    compare,
    evaluate_targets,
    growth_ratio,
    latency_summary,
    percentile,
    ratio,
    scaled,
    steady_window,
    validate_results,
)

pytestmark = pytest.mark.unit


# --- percentiles -----------------------------------------------------------------------------

def test_percentile_interpolates_linearly_between_ranks() -> None:
    values = [1.0, 2.0, 3.0, 4.0]
    assert percentile(values, 0) == 1.0
    assert percentile(values, 100) == 4.0
    assert percentile(values, 50) == 2.5
    assert percentile(values, 95) == pytest.approx(3.85)


def test_percentile_does_not_depend_on_order_and_handles_one_value() -> None:
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert percentile([7.0], 99) == 7.0


def test_percentile_refuses_nothing_and_out_of_range() -> None:
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1.0], 101)


@given(st.lists(st.floats(min_value=0, max_value=1e6, allow_nan=False), min_size=1, max_size=200),
       st.floats(min_value=0, max_value=100))
def test_percentile_lies_within_the_values_and_is_monotonic(values: list[float], q: float) -> None:
    p = percentile(values, q)
    assert min(values) <= p <= max(values)
    assert percentile(values, min(q + 1, 100)) >= p - 1e-9


def test_latency_summary_reports_the_percentiles_and_what_was_missed() -> None:
    summary = latency_summary([i / 100 for i in range(1, 101)], missing=2)
    assert summary["p50"] == pytest.approx(0.505)
    assert summary["p99"] == pytest.approx(0.9901)
    assert summary["max"] == 1.0
    assert (summary["count"], summary["missing"]) == (100, 2)
    empty = latency_summary([], missing=5)
    assert empty["p99"] is None and empty["missing"] == 5


# --- steady window and ratios ---------------------------------------------------------------

def test_steady_window_runs_from_the_first_commit_to_all_committed() -> None:
    samples = [Sample(0.0, 0, 1.0), Sample(1.0, 0, 2.0), Sample(2.0, 2000, 3.0),
               Sample(3.0, 6000, 4.0), Sample(4.0, 10_000, 5.5), Sample(5.0, 10_000, 5.6)]
    window = steady_window(samples, 10_000)
    assert (window.events, window.seconds, window.cpu_s) == (8000, 2.0, 2.5)
    assert window.events_per_s == 4000
    assert window.cpu_per_event == pytest.approx(2.5 / 8000)


def test_steady_window_of_a_single_batch_falls_back_to_the_start() -> None:
    samples = [Sample(0.0, 0, 1.0), Sample(0.5, 0, 1.2), Sample(1.0, 500, 1.4)]
    window = steady_window(samples, 500)
    assert (window.events, window.seconds) == (500, 1.0)


def test_steady_window_refuses_a_run_that_never_finished() -> None:
    with pytest.raises(ValueError):
        steady_window([Sample(0.0, 0, 0.0), Sample(1.0, 10, 1.0)], 20)


def test_window_of_nothing_has_zero_rates() -> None:
    assert Window(0, 0.0, 0.0).events_per_s == 0.0
    assert Window(0, 1.0, 1.0).cpu_per_event == 0.0


def test_ratio_rounds_and_guards_missing_or_zero_references() -> None:
    assert ratio(1.0, 3.0) == 0.333
    assert ratio(None, 1.0) is None
    assert ratio(1.0, 0) is None
    assert growth_ratio(100.0, 105.0) == 1.05


def test_compare_puts_the_service_next_to_the_raw_limit() -> None:
    figures = compare(Window(9000, 3.0, 0.9), Window(10_000, 2.0, 0.5))
    assert figures["events_per_s"] == 3000.0
    assert figures["raw_events_per_s"] == 5000.0
    assert figures["throughput_ratio"] == 0.6
    assert figures["cpu_per_event_ratio"] == pytest.approx(2.0, rel=1e-3)


def test_scaled_volumes_are_proportionate_with_a_floor() -> None:
    assert scaled(100_000, 0.25) == 25_000
    assert scaled(1000, 0.25, minimum=10_000) == 10_000


# --- targets -----------------------------------------------------------------------------------

def _results(**overrides: object) -> dict[str, object]:
    base: dict[str, object] = {
        "schema": RESULTS_SCHEMA,
        "machine": {"cpus": 2},
        "notes": [],
        "services": {
            "intake": {"events_per_s": 4500.0, "raw_events_per_s": 5000.0, "throughput_ratio": 0.9,
                       "cpu_per_event_ratio": 1.5, "peak_rss_mb": 90.0},
            "reporting": {"events_per_s": 1000.0, "raw_events_per_s": 4000.0, "throughput_ratio": 0.25,
                          "cpu_per_event_ratio": 5.0, "peak_rss_mb": 140.0},
        },
        "latency_s": {"200": {"p50": 0.1, "p95": 0.2, "p99": 0.3, "missing": 0},
                      "500": {"p50": 0.5, "p95": 0.9, "p99": 1.2, "missing": 0}},
        "rss_growth_ratio": 1.02,
    }
    base.update(overrides)
    base["targets"] = [t.as_dict() for t in evaluate_targets(base)]
    return base


def test_targets_pass_at_their_limits_and_fail_beyond() -> None:
    verdicts = {t["name"]: t["pass"] for t in _results()["targets"]}  # type: ignore[union-attr]
    assert verdicts["intake: throughput ≥ 0.9 × raw"] is True
    assert verdicts["intake: CPU per event ≤ 1.5 × raw"] is True
    assert verdicts["reporting: throughput ≥ 0.9 × raw"] is False
    assert verdicts["reporting: CPU per event ≤ 1.5 × raw"] is False
    assert verdicts["p99 latency at 500/s < 1.0 s"] is False
    assert verdicts["RSS flat ±10% over the long run"] is True


def test_latency_target_fails_when_events_went_missing_and_is_open_when_unmeasured() -> None:
    lost = _results(latency_s={"500": {"p50": 0.1, "p95": 0.1, "p99": 0.2, "missing": 3}})
    assert [t["pass"] for t in lost["targets"] if t["name"].startswith("p99")] == [False]  # type: ignore[union-attr,index]
    unmeasured = _results(latency_s={"500": {"p50": None, "p95": None, "p99": None, "missing": 0}},
                          rss_growth_ratio=None)
    open_ = {t["name"]: t["pass"] for t in unmeasured["targets"]}  # type: ignore[union-attr]
    assert open_["p99 latency at 500/s < 1.0 s"] is None
    assert open_["RSS flat ±10% over the long run"] is None


@pytest.mark.parametrize(("growth", "passed"), [(0.89, False), (0.9, True), (1.1, True), (1.11, False)])
def test_rss_growth_must_stay_within_ten_percent(growth: float, passed: bool) -> None:
    targets = _results(rss_growth_ratio=growth)["targets"]
    assert [t["pass"] for t in targets if t["name"].startswith("RSS")] == [passed]  # type: ignore[union-attr,index]


def _reporting_figures(workload: str, cpu_ratio: float | None) -> dict[str, object]:
    return {"workload": workload, "events_per_s": 3000.0, "raw_events_per_s": 3100.0,
            "throughput_ratio": 0.97, "cpu_per_event_ratio": cpu_ratio, "peak_rss_mb": 150.0}


def test_reporting_on_the_other_workloads_has_the_cpu_target_each() -> None:
    results = _results(reporting_workloads={"small": _reporting_figures("BENCH_EVENTS=20,000", 1.5),
                                            "national": _reporting_figures("the national replay", 1.51)})
    verdicts = {t["name"]: t["pass"] for t in results["targets"]}  # type: ignore[union-attr]
    assert verdicts["reporting on BENCH_EVENTS=20,000: CPU per event ≤ 1.5 × raw"] is True
    assert verdicts["reporting on the national replay: CPU per event ≤ 1.5 × raw"] is False
    unmeasured = _results(reporting_workloads={"national": _reporting_figures("the national replay", None)})
    assert [t["pass"] for t in unmeasured["targets"]  # type: ignore[union-attr]
            if t["name"].startswith("reporting on")] == [None]  # type: ignore[index]
    assert not [t for t in _results()["targets"] if t["name"].startswith("reporting on")]  # type: ignore[union-attr,index]


def test_reporting_workload_problems_are_named() -> None:
    figures = _reporting_figures("the national replay", 1.2)
    del figures["peak_rss_mb"]
    results = _results(reporting_workloads={"national": figures, "huge": _reporting_figures("x", 1.0)})
    results["reporting_workloads"]["huge"]["workload"] = 3  # type: ignore[index]
    problems = validate_results(results)
    assert "reporting_workloads.national.peak_rss_mb missing" in problems
    assert "reporting_workloads.huge is not one of ('small', 'national')" in problems
    assert "reporting_workloads.huge.workload is not a text" in problems


# --- schema ------------------------------------------------------------------------------------

def test_a_complete_results_document_is_valid() -> None:
    assert validate_results(_results()) == []


def test_schema_problems_are_named() -> None:
    results = _results()
    results["schema"] = "other"
    del results["notes"]
    results["services"]["intake"]["throughput_ratio"] = "fast"  # type: ignore[index]
    del results["services"]["reporting"]["peak_rss_mb"]  # type: ignore[attr-defined]
    results["latency_s"]["fast"] = {"p50": 1.0, "p95": 1.0}  # type: ignore[index]
    results["rss_growth_ratio"] = True
    problems = validate_results(results)
    assert "schema is not 'taskforce-bench/1'" in problems
    assert "missing notes" in problems
    assert "services.intake.throughput_ratio is not a number" in problems
    assert "services.reporting.peak_rss_mb missing" in problems
    assert "latency_s key 'fast' is not a rate" in problems
    assert "latency_s.fast.p99 missing" in problems
    assert "rss_growth_ratio is not a number" in problems


def test_none_is_allowed_for_figures_that_could_not_be_measured() -> None:
    results = _results(rss_growth_ratio=None)
    results["services"]["intake"]["cpu_per_event_ratio"] = None  # type: ignore[index]
    assert validate_results(results) == []
