"""Kafka limit: a raw aiokafka consumer (``getmany``) that only decodes each message.

``python -m bench.aiokafka_raw --bootstrap H:P --topics a,b --group G --expect N --out F``
"""

from __future__ import annotations

import argparse
import asyncio

import orjson
from aiokafka import AIOKafkaConsumer

from bench.probe import Probe, add_probe_arguments


async def consume(args: argparse.Namespace) -> None:
    probe = Probe(args.out, args.expect, args.deadline)
    consumer = AIOKafkaConsumer(
        *args.topics.split(","),
        bootstrap_servers=args.bootstrap,
        group_id=args.group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        while not probe.done:
            batches = await consumer.getmany(timeout_ms=200, max_records=2000)
            for records in batches.values():
                for rec in records:
                    orjson.loads(rec.value)
                if records and probe.hit(len(records)):
                    break
            probe.expired()
    finally:
        await consumer.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    add_probe_arguments(parser)
    asyncio.run(consume(parser.parse_args()))


if __name__ == "__main__":
    main()
