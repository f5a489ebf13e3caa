"""Competing framework: the same bare decode in Quix Streams (``sdf.apply(decode)``).

``python -m bench.quix_bare --bootstrap H:P --topics a,b --group G --expect N --out F``
"""

from __future__ import annotations

import argparse
import logging
import tempfile
from typing import Any

import orjson
from quixstreams import Application

from bench.probe import Probe, add_probe_arguments


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    add_probe_arguments(parser)
    args = parser.parse_args()
    probe = Probe(args.out, args.expect, args.deadline)
    app = Application(
        broker_address=args.bootstrap,
        consumer_group=args.group,
        auto_offset_reset="earliest",
        state_dir=tempfile.mkdtemp(prefix="quix-bench-"),
        loglevel=logging.WARNING,
        auto_create_topics=False,
    )

    def decode(value: bytes) -> Any:
        doc = orjson.loads(value)
        if probe.hit():
            app.stop()
        return doc

    for name in args.topics.split(","):
        sdf = app.dataframe(app.topic(name, value_deserializer="bytes", key_deserializer="bytes"))
        sdf.apply(decode)
    # timeout: stop when nothing new arrives for that long (a stuck run still ends).
    app.run(timeout=min(args.deadline, 30.0))
    if not probe.done:
        probe.write()


if __name__ == "__main__":
    main()
