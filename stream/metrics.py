"""Worker-side Prometheus metrics: batch sizes, event-to-alert latency, records in and out.

They live in their own registry (:data:`WORKER_REGISTRY`), served by each worker
on its own port with :func:`start_worker_metrics_server`; the API's ``/metrics``
serves the cluster-wide counters from the store instead. The ``observe_*``
functions are cheap and never raise, so the updater can call them inline.

>>> observe_batch(3)
>>> observe_batch_seconds(0.004)
>>> observe_record_wait(0.012)
>>> observe_records_in("twin.vitals", 3)
>>> observe_records_out("twin.alerts", 1)
>>> observe_event_to_alert(0.25)
>>> observe_redis_request()
>>> b'twinstream_worker_batch_size_count' in generate_latest(WORKER_REGISTRY)
True
"""

from __future__ import annotations

from collections.abc import Iterable

import orjson
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import start_http_server

__all__ = [
    "WORKER_REGISTRY",
    "generate_latest",
    "observe_alerts_sent",
    "observe_batch",
    "observe_batch_seconds",
    "observe_event_to_alert",
    "observe_record_wait",
    "observe_records_in",
    "observe_records_out",
    "observe_redis_request",
    "start_worker_metrics_server",
]

WORKER_REGISTRY = CollectorRegistry(auto_describe=True)

BATCH_SIZE = Histogram(
    "twinstream_worker_batch_size",
    "Records per micro-batch handed to the updater.",
    buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000),
    registry=WORKER_REGISTRY,
)
BATCH_SECONDS = Histogram(
    "twinstream_worker_batch_seconds",
    "Wall time the updater took for one micro-batch: decode, apply, commit (not the sends).",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    registry=WORKER_REGISTRY,
)
RECORD_WAIT = Histogram(
    "twinstream_worker_record_wait_seconds",
    "From a micro-batch's oldest record's Kafka timestamp (its producer's clock) to the"
    " batch's start: how long records waited to be processed.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 60, 3600),
    registry=WORKER_REGISTRY,
)
EVENT_TO_ALERT = Histogram(
    "twinstream_worker_event_to_alert_seconds",
    "From an alert's observation (event time) to the broker acking the alert.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600),
    registry=WORKER_REGISTRY,
)
RECORDS_IN = Counter(
    "twinstream_worker_records_in",
    "Records consumed by this worker, by topic.",
    ["topic"],
    registry=WORKER_REGISTRY,
)
RECORDS_OUT = Counter(
    "twinstream_worker_records_out",
    "Records this worker produced (alerts, dead letters), by topic.",
    ["topic"],
    registry=WORKER_REGISTRY,
)

REDIS_REQUESTS = Counter(
    "twinstream_worker_redis_requests",
    "Round trips this worker made to Redis (a pipeline is one).",
    registry=WORKER_REGISTRY,
)
REDIS_COMMANDS = Counter(
    "twinstream_worker_redis_commands",
    "Commands this worker sent to Redis (a Lua script call is one, whatever it runs).",
    registry=WORKER_REGISTRY,
)


def observe_redis_request(commands: int = 1) -> None:
    """One round trip to Redis, carrying ``commands`` commands."""
    REDIS_REQUESTS.inc()
    REDIS_COMMANDS.inc(commands)


def observe_batch(size: int) -> None:
    """One micro-batch of ``size`` records reached the updater."""
    BATCH_SIZE.observe(size)


def observe_batch_seconds(seconds: float) -> None:
    """The updater finished a micro-batch ``seconds`` after it began."""
    BATCH_SECONDS.observe(seconds)


def observe_record_wait(seconds: float) -> None:
    """A micro-batch began ``seconds`` after its oldest record's timestamp."""
    RECORD_WAIT.observe(max(0.0, seconds))


def observe_records_in(topic: str, n: int = 1) -> None:
    """``n`` records of ``topic`` were consumed."""
    RECORDS_IN.labels(topic).inc(n)


def observe_records_out(topic: str, n: int = 1) -> None:
    """``n`` records were produced to ``topic`` (and acked by the broker)."""
    RECORDS_OUT.labels(topic).inc(n)


def observe_event_to_alert(seconds: float) -> None:
    """One alert went out ``seconds`` after the observation that fired it."""
    EVENT_TO_ALERT.observe(max(0.0, seconds))


def observe_alerts_sent(bodies: Iterable[bytes], sent_at: float) -> None:
    """Alert JSON bodies the broker just acked at ``sent_at`` (epoch seconds).

    Reads each body's ``observed_at``; a body that cannot be read is skipped.
    Replayed history makes large latencies: they land in the top buckets.
    """
    from datetime import datetime

    for body in bodies:
        try:
            observed = datetime.fromisoformat(orjson.loads(body)["observed_at"]).timestamp()
        except (ValueError, KeyError, TypeError, orjson.JSONDecodeError):
            continue
        observe_event_to_alert(sent_at - observed)


def start_worker_metrics_server(port: int, addr: str = "127.0.0.1") -> None:
    """Serve :data:`WORKER_REGISTRY` on ``http://addr:port/metrics`` from a daemon thread."""
    start_http_server(port, addr, registry=WORKER_REGISTRY)
