"""The Faust application, its topics, and the process-wide twin updater.

Agents live in :mod:`agents`; they import ``app`` and ``runtime`` from here.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any, cast

import faust
from faust.transport.consumer import Consumer

from stream import gcpolicy
from stream.faust_consumer import install as install_consumer
from stream.kafka import kafka_client_options
from stream.produce import PartitionCache, send_keyed
from stream.settings import FAUST_DATADIR, Settings, get_settings
from stream.store import TwinStore, open_store
from stream.updater import TwinUpdater
from twin import _native

__all__ = ["FaustSink", "Runtime", "app", "create_app", "runtime"]

log = logging.getLogger(__name__)


def create_app(settings: Settings) -> faust.App:
    """A Faust app configured for fast failure detection and raw-bytes topics.

    Security comes from the same settings as every other client
    (:func:`stream.kafka.kafka_client_options`): Faust turns credentials into
    aiokafka's options itself, and only an ``ssl_context`` inside them makes it
    use ``SASL_SSL`` rather than ``SASL_PLAINTEXT``.
    """
    options = kafka_client_options(settings)  # also checks the settings fit together
    context = options.get("ssl_context")
    credentials: faust.types.auth.CredentialsT | None = None
    if options.get("sasl_mechanism"):
        credentials = faust.SASLCredentials(
            username=options["sasl_plain_username"],
            password=options["sasl_plain_password"],
            mechanism=options["sasl_mechanism"],
            ssl_context=context,
        )
    elif context is not None:
        credentials = faust.SSLCredentials(context)
    app = faust.App(
        settings.consumer_group,
        broker=[f"kafka://{server.strip()}" for server in settings.kafka_bootstrap.split(",")],
        broker_credentials=credentials,
        store="memory://",
        datadir=FAUST_DATADIR,
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        web_enabled=False,
        autodiscover=False,
        # A dead worker is noticed in ~6 s (the broker's minimum), not Faust's default 60 s.
        broker_session_timeout=6.0,
        broker_heartbeat_interval=1.5,
        broker_commit_interval=1.0,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        stream_wait_empty=False,
    )
    install_consumer(
        app,
        eager_delivery=settings.faust_eager_delivery,
        fetch_max_wait_ms=settings.fetch_max_wait_ms,
        busy_fetch_max_wait_ms=settings.fetch_max_wait_busy_ms,
        fetch_min_bytes=settings.fetch_min_bytes,
        batch_topics=settings.input_topics() if settings.faust_batch_delivery else (),
        batch_max=settings.batch_max,
        fast_fetch_decode=settings.fast_fetch_decode,
    )
    return app


class FaustSink:
    """Sends outputs through the app's aiokafka producer and waits for the broker's ack.

    Neither ``Topic.send`` nor Faust's ``Producer.send``: the outputs are bytes
    already, and aiokafka's ``send`` is called with each key's partition known
    (:func:`stream.produce.send_keyed`).
    """

    def __init__(self, app: faust.App) -> None:
        self.app = app
        self._partitions = PartitionCache()

    async def send(self, topic: str, items: Sequence[tuple[bytes | None, bytes]]) -> None:
        producer = cast(Any, self.app.producer)._ensure_producer()  # Faust's aiokafka producer
        await send_keyed(producer, topic, items, self._partitions)


class Runtime:
    """Lazily built, process-wide store and updater (built inside the worker's loop)."""

    def __init__(self, app: faust.App, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self._store: TwinStore | None = None
        self._updater: TwinUpdater | None = None

    @property
    def updater(self) -> TwinUpdater:
        if self._updater is None:
            self._store = open_store(
                self.settings.redis_url,
                self.settings.partitions,
                self.settings.key_prefix,
                self.settings.redis_password_value(),
            )
            self._updater = TwinUpdater(self.settings, self._store, FaustSink(self.app))
            core = "compiled (mypyc)" if _native.ACTIVE else f"interpreted ({_native.REASON})"
            log.info("twin core: %s", core)
        return self._updater

    def revoked(self, partitions: set[int]) -> None:
        if self._updater is not None:
            self._updater.on_revoked(partitions)

    async def drain(self, partitions: set[int] | None = None, wait_s: float = 10.0) -> None:
        """Send what committed batches (of ``partitions``) left in flight, within ``wait_s``;
        anything still unsent stays in the store's outbox for the partition's next owner."""
        if self._updater is not None and not await self._updater.drain(partitions, wait_s):
            log.warning("outputs still in flight after %.0fs: left to the outbox", wait_s)

    async def assigned(self, partitions: set[int]) -> None:
        await self.updater.on_assigned(partitions)

    async def rewind(self) -> None:
        """After a rebalance, before Faust seeks to the committed offsets: move back
        those past the store's applied offsets (it lost acknowledged writes; see
        :meth:`TwinUpdater.rewind_targets`), so Faust seeks to the first lost record."""
        consumer = cast(Consumer, self.app.consumer)
        inputs = set(self.settings.input_topics())
        if not any(tp.topic in inputs for tp in consumer.assignment()):
            return
        committed = dict(await consumer.seek_to_committed())
        targets = await self.updater.rewind_targets(
            {(tp.topic, tp.partition): o for tp, o in committed.items() if tp.topic in inputs}
        )
        if targets:
            log.error(
                "the twin store lost acknowledged writes: rewinding %d partition(s) to its"
                " offsets to apply them again: %s",
                len(targets),
                sorted(targets.items()),
            )
            # faust-streaming has no public call to commit chosen offsets; _commit is
            # the one its own commit path uses (it also checks the assignment).
            back = {tp: targets.get((tp.topic, tp.partition)) for tp in committed}
            await consumer._commit({tp: o for tp, o in back.items() if o is not None})


settings = get_settings()
app = create_app(settings)
runtime = Runtime(app, settings)
input_channel = app.topic(
    *settings.input_topics(),
    key_type=bytes,
    value_type=bytes,
    key_serializer="raw",
    value_serializer="raw",
)


@app.task  # type: ignore[untyped-decorator]
async def _drop_monitor() -> None:
    # Faust's Monitor sensor keeps per-event statistics we do not read (twinstream
    # exports its own Prometheus metrics); removing it saves ~5 % per event
    # (../shared/PERF-NOTES.md). It is added to app.sensors when the app starts.
    app.sensors.remove(app.monitor)


@app.task  # type: ignore[untyped-decorator]
async def _full_garbage_collections() -> None:
    # Survivors of young collections are frozen (stream.gcpolicy): the whole heap
    # is collected here, on a schedule, rather than whenever Python decides.
    every = settings.gc_full_minutes * 60
    while every > 0:
        await asyncio.sleep(every)
        gcpolicy.full_collection()


@app.on_partitions_revoked.connect  # type: ignore[arg-type]
async def _on_revoked(sender: Any, revoked: set[Any], **_: Any) -> None:
    partitions = {tp.partition for tp in revoked}
    await runtime.drain(partitions)  # the next owner need not resend them
    runtime.revoked(partitions)


@app.on_before_shutdown.connect  # type: ignore[arg-type]
async def _on_shutdown(sender: Any, **_: Any) -> None:
    # The consumer has stopped, the producer not yet: send what is in flight.
    await runtime.drain()


@app.on_rebalance_complete.connect  # type: ignore[arg-type]
async def _on_rebalance_complete(sender: Any, **_: Any) -> None:
    # Sent by Faust's recovery after a rebalance, before it seeks every assigned
    # partition to its committed offset and resumes fetching.
    await runtime.rewind()


@app.on_partitions_assigned.connect  # type: ignore[arg-type]
async def _on_assigned(sender: Any, assigned: set[Any], **_: Any) -> None:
    # Only the twin updater's input topics matter (not the reply/changelog ones).
    inputs = set(settings.input_topics())
    await runtime.assigned({tp.partition for tp in assigned if tp.topic in inputs})
