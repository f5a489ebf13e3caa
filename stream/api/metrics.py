"""``GET /metrics``: the store's accounting counters and consumer lag, in Prometheus format.

The counters live in Redis (moved atomically with the twins), so they are the
cluster-wide truth however many workers run: they are read at scrape time and
exposed through a one-shot custom collector, next to this process's own
default metrics. Worker-side metrics (batch sizes, latencies) are served by
each worker itself, see :mod:`stream.metrics`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from aiokafka import TopicPartition
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

__all__ = ["OUTCOMES", "StoreSnapshotCollector", "render_metrics"]

OUTCOMES = ("consumed", "applied", "duplicates", "replay_skipped")


class StoreSnapshotCollector(Collector):
    """Yields one snapshot of the store's counters and the consumer lag.

    >>> c = StoreSnapshotCollector({"consumed": 3, "applied": 2, "dead.invalid": 1}, None)
    >>> sorted(s.labels.get("reason", s.labels.get("outcome", "")) for m in c.collect()
    ...        for s in m.samples if s.name.endswith("_total"))
    ['', 'applied', 'consumed', 'duplicates', 'invalid', 'replay_skipped']
    """

    def __init__(
        self, counters: Mapping[str, int], lag: Mapping[TopicPartition, int] | None
    ) -> None:
        self.counters = dict(counters)
        self.lag = None if lag is None else dict(lag)

    def collect(self) -> Iterator[Metric]:
        records = CounterMetricFamily(
            "twinstream_records",
            "Consumed input records and how each ended (from the twin store).",
            labels=["outcome"],
        )
        for name in OUTCOMES:
            records.add_metric([name], self.counters.get(name, 0))
        yield records
        alerts = CounterMetricFamily(
            "twinstream_alerts_committed", "Alerts committed to the outbox (from the twin store)."
        )
        alerts.add_metric([], self.counters.get("alerts", 0))
        yield alerts
        dead = CounterMetricFamily(
            "twinstream_dead_letters", "Records dead-lettered, by reason.", labels=["reason"]
        )
        for name, n in sorted(self.counters.items()):
            if name.startswith("dead."):
                dead.add_metric([name.removeprefix("dead.")], n)
        yield dead
        if self.lag is not None:
            lag = GaugeMetricFamily(
                "twinstream_consumer_lag",
                "Input records not yet applied (end offset - applied offset - 1).",
                labels=["topic", "partition"],
            )
            for tp, n in sorted(self.lag.items()):
                lag.add_metric([tp.topic, str(tp.partition)], n)
            yield lag


def render_metrics(counters: Mapping[str, int], lag: Mapping[TopicPartition, int] | None) -> bytes:
    """The text exposition: the snapshot, then this process's default registry."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StoreSnapshotCollector(counters, lag))
    return generate_latest(registry) + generate_latest(REGISTRY)
