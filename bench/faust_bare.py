"""Framework ceiling: a bare Faust agent that only decodes each message (``orjson.loads``).

``--tuned`` runs it on uvloop with Faust's Monitor sensor removed from
``app.sensors`` (the supported gains in /work/shared/PERF-NOTES.md) and without
the terminal spinner (which puts the root logger at DEBUG); without it
Faust runs with default settings on the default asyncio loop. ``--eager`` also
consumes through twinstream's :mod:`stream.faust_consumer` transport (how the
twinstream worker consumes): the ceiling raised by avoiding Faust's per-message tasks.
``--batch`` also turns on that transport's batch delivery (one Faust message per
topic partition and fetch, as the twinstream worker consumes its input topics):
the agent decodes every record of each :class:`~stream.faust_consumer.RecordBatch`.

``python -m bench.faust_bare --bootstrap H:P --topics a,b --group G --expect N --out F``
``[--tuned [--eager [--batch]]]``
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import orjson

from bench.probe import Probe, add_probe_arguments
from stream.faust_consumer import RecordBatch
from stream.settings import FAUST_DATADIR


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    add_probe_arguments(parser)
    parser.add_argument("--tuned", action="store_true", help="uvloop and no Monitor")
    parser.add_argument("--eager", action="store_true", help="with --tuned: eager delivery")
    parser.add_argument("--batch", action="store_true", help="with --eager: batch delivery")
    args = parser.parse_args()
    if args.tuned:
        from mode.loop import use as use_loop

        use_loop("uvloop")
    import faust

    probe = Probe(args.out, args.expect, args.deadline)
    app = faust.App(
        args.group,
        broker=f"kafka://{args.bootstrap}",
        store="memory://",
        datadir=FAUST_DATADIR,  # not the current directory
        web_enabled=False,  # no HTTP port: several bench processes may run at once
        consumer_auto_offset_reset="earliest",
    )
    topics = args.topics.split(",")
    if args.eager:
        from stream.faust_consumer import TwinConsumer, install

        install(app, batch_topics=topics if args.batch else ())
    channel = app.topic(*topics, key_type=bytes, value_type=bytes, value_serializer="raw")

    @app.agent(channel)
    async def decode(stream: Any) -> None:
        async for value in stream:
            if type(value) is RecordBatch:
                for record in value:
                    orjson.loads(record.value)
                probe.hit(len(value))
            else:
                orjson.loads(value)
                probe.hit()
            if args.eager:  # how many deliveries took the eager path
                probe.extra["eager_hits"] = TwinConsumer.eager_hits

    @app.timer(1.0)
    async def watchdog() -> None:
        probe.expired()

    if args.tuned:

        @app.task
        async def drop_monitor() -> None:
            # The Monitor is added to app.sensors when the app starts.
            app.sensors.remove(app.monitor)

    sys.argv = [sys.argv[0]]
    worker = faust.Worker(app, loglevel="WARNING", quiet=True)
    if args.tuned:
        worker.spinner = None  # it sets the root logger to DEBUG (see stream/cli.py)
    worker.execute_from_commandline()


if __name__ == "__main__":
    main()
