"""Prometheus metrics of our own, beside FastStream's middleware metrics."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class ServiceMetrics:
    """One registry per service process, so tests can run several services in one process."""

    def __init__(self, service: str, registry: CollectorRegistry | None = None) -> None:
        self.service = service
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.events_applied = Counter(
            "taskforce_events_applied", "Input events applied to a projection.",
            ["service", "event_type"], registry=r)
        self.duplicates = Counter(
            "taskforce_duplicates_skipped", "Events skipped because their id was applied already.",
            ["service"], registry=r)
        self.dlq = Counter(
            "taskforce_dlq_records", "Records sent to the dead-letter topic.",
            ["service", "reason"], registry=r)
        self.unpublishable = Counter(
            "taskforce_unpublishable_records",
            "Output records the broker refused for good, sent to the dead-letter topic instead.",
            ["service", "reason"], registry=r)
        self.batch_size = Histogram(
            "taskforce_batch_size", "Records per consumed batch.", ["service"], registry=r,
            buckets=(1, 10, 50, 100, 250, 500, 1000, 2000, 5000))
        self.batch_seconds = Histogram(
            "taskforce_batch_seconds",
            "Time per batch applying it and publishing its records (retries included).",
            ["service"], registry=r,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
        # Consumer lag per partition this process owns (services.common.lag); a partition
        # given up in a rebalance loses its samples.
        self.lag = Gauge(
            "taskforce_consumer_lag", "Records behind the partition's end, per partition.",
            ["service", "topic", "partition"], registry=r)
        self.lag_seconds = Gauge(
            "taskforce_consumer_lag_seconds",
            "Seconds behind, per partition: now minus the timestamp of the newest record "
            "consumed (or the last time the partition was caught up, if later); 0 when caught up.",
            ["service", "topic", "partition"], registry=r)
        self.summaries = Counter(
            "taskforce_summaries_published", "Committee summaries published, by status.",
            ["status"], registry=r)
        self.store_retries = Counter(
            "taskforce_store_retries", "Store operations retried after an error.",
            ["service"], registry=r)
        self.ready = Gauge("taskforce_ready", "1 when the service is ready.", ["service"], registry=r)
