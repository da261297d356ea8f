"""The national workload's arithmetic and the e2e phase's figures, targets and rendering."""

from __future__ import annotations

import copy
import itertools
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bench import national, sizes
from bench.e2e import reference_from_throughput
from bench.findings import notes
from bench.report import markdown
from bench.stats import RESULTS_SCHEMA, cpu_bound, evaluate_targets, validate_results
from schemas.municipalities import municipalities

pytestmark = pytest.mark.unit

LATEST = Path(__file__).resolve().parents[2] / "bench" / "results" / "latest.json"


def test_every_municipality_of_the_reference_list_has_a_size_and_no_other() -> None:
    assert set(sizes.POPULATION_THOUSANDS) == {m.code for m in municipalities()}
    assert all(size >= 2 for size in sizes.POPULATION_THOUSANDS.values())


def test_apportion_sums_to_the_total_in_proportion_and_deterministically() -> None:
    shares = sizes.apportion(10, {"a": 1, "b": 1, "c": 1})
    assert shares == {"a": 4, "b": 3, "c": 3}  # the remainder goes by key on a tie
    assert shares == sizes.apportion(10, {"c": 1, "b": 1, "a": 1})
    assert sizes.apportion(7, {"big": 6, "small": 1}) == {"big": 6, "small": 1}
    assert sizes.apportion(0, {"a": 1}) == {"a": 0}
    with pytest.raises(ValueError):
        sizes.apportion(5, {"a": 0})


@pytest.mark.parametrize("years", [1.0, 2.5, 0.05])
def test_the_98_municipalities_add_up_to_the_national_figures(years: float) -> None:
    plan = national.volumes(98, years)
    assert sum(plan.notifications.values()) == round(national.NOTIFICATIONS_PER_YEAR * years)
    assert sum(plan.case_reviews.values()) == round(national.CASE_REVIEWS_PER_YEAR * years)
    assert sum(plan.milestone_updates.values()) == round(national.MILESTONE_UPDATES_PER_YEAR * years)


def test_volumes_follow_the_size_of_the_municipality() -> None:
    plan = national.volumes(98, 1.0)
    assert plan.notifications["101"] == max(plan.notifications.values())  # Copenhagen
    assert plan.notifications["825"] == min(plan.notifications.values())  # Læsø
    assert plan.notifications["751"] > plan.notifications["461"] > plan.notifications["480"]
    assert plan.as_dict()["notifications"] == 152_700


def test_fewer_municipalities_keep_their_national_share_spread_over_the_sizes() -> None:
    ten = sizes.chosen(10)
    assert len(set(ten)) == 10 and ten[0] == "101"
    assert sizes.chosen(98) == sizes.by_size()
    whole, part = national.volumes(98, 1.0), national.volumes(10, 1.0)
    assert part.municipalities == ten
    assert all(part.notifications[code] == whole.notifications[code] for code in ten)
    with pytest.raises(ValueError):
        sizes.chosen(99)


def test_the_replay_is_deterministic_in_order_and_its_expectations_count_its_events() -> None:
    replay = national.replay(4, 0.05)
    again = national.replay(4, 0.05)
    assert replay.records == again.records
    assert replay.expected == again.expected
    events = [json.loads(value) for _t, _k, value in replay.records]
    instants = [datetime.fromisoformat(e["occurred_at"]) for e in events]
    listed_late = sum(1 for a, b in itertools.pairwise(instants) if b < a)
    assert listed_late <= len(events) * 0.05  # in the order they happen, but for a few listed early
    assert len({e["event_id"] for e in events}) == len(events)
    for code, expected in replay.expected.items():
        mine = [(e, at) for e, at in zip(events, instants, strict=True) if e["municipality_code"] == code]
        assert expected.watermark == max(at for _e, at in mine)
        received = [at for e, at in mine if e["event_type"] == "notification.received"]
        assert expected.received == sum(1 for at in received if at.astimezone(UTC) >= datetime(
            2021, 12, 31, 23, tzinfo=UTC))
        assert sum(expected.statuses.values()) >= 2  # every milestone has a status or not_started


def _summary(expected: national.Expected, **changes: Any) -> dict[str, Any]:
    plan = {"meetings_held": expected.meetings, **expected.statuses}
    data = {"period": expected.period, "as_of": expected.watermark.astimezone().isoformat(),
            "notifications": {"received": expected.received, "assessed": expected.received},
            "case_reviews": {"completed": expected.case_reviews}, "development_plan": plan}
    for path, value in changes.items():
        section, field = path.split("__")
        data[section][field] = value  # type: ignore[index]
    return {"data": data}


def test_a_summary_meets_the_expectation_only_when_it_shows_every_event() -> None:
    expected = national.replay(3, 0.05).expected[sizes.chosen(3)[1]]
    assert expected.met_by(_summary(expected))
    assert not expected.met_by(_summary(expected, notifications__assessed=expected.received - 1))
    assert not expected.met_by(_summary(expected, case_reviews__completed=expected.case_reviews + 1))
    assert not expected.met_by(_summary(expected, development_plan__not_started=99))
    early = _summary(expected)
    early["data"]["as_of"] = "2022-01-01T00:00:00+01:00"
    assert not expected.met_by(early)


def test_the_cpu_bound_weighs_each_raw_consumer_by_its_input() -> None:
    bound = cpu_bound({"intake": 100e-6, "reporting": 50e-6}, {"intake": 100e-6},
                      {"intake": 1000, "reporting": 500}, records=1000, cores=2)
    assert bound["raw_consumers_cpu_s_per_record"] == pytest.approx(125e-6)
    assert bound["store_cpu_s_per_record"] == pytest.approx(100e-6)
    assert bound["records_per_s"] == pytest.approx(2 / 225e-6, rel=1e-3)
    assert bound["store_one_core_records_per_s"] == pytest.approx(10_000)


def test_the_throughput_phase_gives_the_reference_only_when_it_measured_every_service() -> None:
    def figures(cpu: float) -> dict[str, Any]:
        return {"events": 100, "raw_cpu_s_per_event": cpu, "runs": {"raw": [
            {"events_per_s": 10.0, "server_cpu_s_per_event": {"mongodb": 9.0}},
            {"events_per_s": 20.0, "server_cpu_s_per_event": {"mongodb": 2.0}}]}}
    services = {name: figures(1.0) for name in ("intake", "analysis", "followup", "reporting")}
    reference = reference_from_throughput(services)
    assert reference is not None
    assert reference["store_cpu_s_per_event"]["intake"] == 2.0  # the best raw run's store
    assert "throughput phase" in reference["source"]
    del services["followup"]
    assert reference_from_throughput(services) is None


E2E = {"municipalities": 98, "years": 1.0, "records": 330_674, "seconds": 110.0, "records_per_s": 3006.1,
       "records_per_s_with_startup": 2800.0, "complete": True, "missing_summaries": [],
       "cpu_s_per_record": {"intake": 9e-5, "reporting": 1e-4, "mongodb (server)": 2.5e-4},
       "cpu_s_per_record_total": 4.4e-4, "cpu_cores_busy": 1.3, "inputs": {"intake": 305_694},
       "cpu_s_per_input_event": {"intake": 9.7e-5},
       "cpu_bound": {"source": "the throughput phase", "raw_cpu_s_per_event": {"intake": 7e-5},
                     "raw_consumers_cpu_s_per_record": 1e-4, "store_cpu_s_per_record": 2e-4,
                     "cpu_s_per_record": 3e-4, "cores": 2, "records_per_s": 6666.7},
       "ratio_to_cpu_bound": 0.451}


def _with_e2e(**changes: Any) -> dict[str, Any]:
    results: dict[str, Any] = {
        "schema": RESULTS_SCHEMA, "started_at": "2026-12-07T00:00:00+00:00", "duration_s": 200.0,
        "scale": {"bench_events": 100_000}, "machine": {"cpus": 2}, "notes": [], "services": {},
        "latency_s": {}, "rss_growth_ratio": None, "e2e": dict(copy.deepcopy(E2E), **changes)}
    results["targets"] = [t.as_dict() for t in evaluate_targets(results)]
    return results


def test_the_e2e_target_is_5000_records_per_s_of_a_replay_that_finished() -> None:
    def verdict(results: dict[str, Any]) -> bool | None:
        return next(t["pass"] for t in results["targets"] if t["name"].startswith("end-to-end"))
    assert verdict(_with_e2e()) is False
    assert verdict(_with_e2e(records_per_s=5000.0)) is True
    assert verdict(_with_e2e(records_per_s=6000.0, complete=False)) is False
    assert verdict(_with_e2e(records_per_s=None)) is None


def test_the_e2e_section_is_optional_but_checked_when_present() -> None:
    assert validate_results(_with_e2e()) == []
    broken = _with_e2e()
    broken["e2e"]["records_per_s"] = "fast"
    del broken["e2e"]["ratio_to_cpu_bound"]
    broken["e2e"]["cpu_s_per_record"]["intake"] = "a lot"
    assert set(validate_results(broken)) == {"e2e.records_per_s is not a number",
                                             "e2e.ratio_to_cpu_bound missing",
                                             "e2e.cpu_s_per_record.intake is not a number"}
    without = _with_e2e()
    del without["e2e"]
    assert validate_results(without) == []


def test_the_committed_results_document_still_validates() -> None:
    if not LATEST.exists():
        pytest.skip("no committed results")
    assert validate_results(json.loads(LATEST.read_text(encoding="utf-8"))) == []


def test_markdown_and_notes_show_the_e2e_figures_and_why_the_target_is_missed() -> None:
    results = _with_e2e()
    text = notes(results)
    assert any(n.startswith("End-to-end national replay (bench/e2e.py): 98 municipalities") and
               "3,006 records/s" in n and "× 0.451" in n for n in text)
    assert any(n.startswith("Why the national replay misses 5,000 records/s") and "~4,545 records/s" in n
               for n in text)
    page = markdown(dict(results, notes=text))
    assert "## End-to-end national replay" in page
    assert "| 98 | 1 | 330,674 | 110.0 | 3,006 | 2,800 | 6,667 | 0.451 | yes |" in page
    assert "| mongodb (server) | 250.0 | – | – |" in page
