"""The naive peer: the same work per event as twinstream, done the obvious way.

A plain Faust agent (uvloop, as the twinstream worker, so the loop is not the
difference) that for every record: decodes and validates it with the same
decoders (:mod:`stream.handlers`), and for each event in it ``GET``\\s the
twin from Redis, unpickles it with its river models, updates the models
(``stats.EWMean`` + ``stats.EWVar`` per vital, one ``time_series.HoltWinters``
per patient on heart rate, whose one-step forecast error is its anomaly
score), applies the event with the same core functions (``twin.apply.*`` via
``stream.handlers.APPLIERS``), pickles, ``SET``\\s, and sends each alert (and
each dead letter) with ``await``. No batching, no offsets in Redis, no outbox.

HoltWinters rather than HalfSpaceTrees: a pickled HalfSpaceTrees is ~170 KB and
its pickle round trip ~15 ms (PERF-NOTES), which would cap this peer near 60
events/s and make the comparison say nothing about the rest of the design.

Reads topic names, bootstrap and Redis from the ``TWIN_*`` environment;
``--prefix`` is the Redis key prefix of its twins.
"""

from __future__ import annotations

import argparse
import pickle
import sys
import time
from typing import Any

from bench.probe import Probe

_VITALS = ("heart_rate", "respiratory_rate", "spo2", "systolic_bp", "temperature_c")


def _models() -> dict[str, Any]:
    from river import stats, time_series

    out: dict[str, Any] = {"hw": time_series.HoltWinters(alpha=0.3, beta=0.1)}
    for name in _VITALS:
        out[f"{name}.mean"] = stats.EWMean(fading_factor=0.1)
        out[f"{name}.var"] = stats.EWVar(fading_factor=0.1)
    return out


def _learn(models: dict[str, Any], values: dict[str, float]) -> float:
    """Update the models; return the heart-rate forecast error (0 until warm)."""
    for name, x in values.items():
        models[f"{name}.mean"].update(x)
        models[f"{name}.var"].update(x)
    hr = values.get("heart_rate")
    if hr is None:
        return 0.0
    hw = models["hw"]
    score = abs(hr - hw.forecast(horizon=1)[0]) if hw._initialized else 0.0
    hw.learn_one(hr)
    return score


def _observations(event: Any) -> list[dict[str, float]]:
    """The numeric vitals of an event, one dict per reading."""
    if hasattr(event, "iter_readings"):  # wearables: heart rate and SpO2 readings
        readings = event.iter_readings()
        return [
            {k: float(v) for k in ("heart_rate", "spo2") if (v := getattr(r, k)) is not None}
            for r in readings
        ]
    if hasattr(event, "heart_rate"):
        return [{k: float(v) for k in _VITALS if (v := getattr(event, k, None)) is not None}]
    return []


def _mappingproxy(items: dict[Any, Any]) -> Any:
    import types

    return types.MappingProxyType(items)


def _picklable_mappingproxy() -> None:
    """Twins may hold read-only mappings (``types.MappingProxyType``); pickle them as dicts."""
    import copyreg
    import types

    copyreg.pickle(types.MappingProxyType, lambda m: (_mappingproxy, (dict(m),)))


def main() -> None:
    _picklable_mappingproxy()
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--expect", type=int, required=True)
    parser.add_argument("--deadline", type=float, default=120.0)
    parser.add_argument("--out", required=True)
    parser.add_argument("--prefix", required=True)
    args = parser.parse_args()
    from pathlib import Path

    from mode.loop import use as use_loop

    use_loop("uvloop")
    import faust
    import redis.asyncio as aioredis

    from schemas.decode import Rejection
    from stream.handlers import APPLIERS, decoders_for
    from stream.settings import FAUST_DATADIR, get_settings
    from twin.state import TwinState

    settings = get_settings()
    cfg = settings.twin_config()
    decoders = decoders_for(settings)
    probe = Probe(Path(args.out), args.expect, args.deadline)
    app = faust.App(
        settings.consumer_group,
        broker=f"kafka://{settings.kafka_bootstrap}",
        store="memory://",
        datadir=FAUST_DATADIR,  # not the current directory
        web_enabled=False,
        consumer_auto_offset_reset="earliest",
    )
    inputs = app.topic(
        *settings.input_topics(), key_type=bytes, value_type=bytes, value_serializer="raw"
    )
    alerts = app.topic(settings.topic_alerts, key_serializer="raw", value_serializer="raw")
    dead = app.topic(settings.topic_deadletter, key_serializer="raw", value_serializer="raw")
    redis = aioredis.Redis.from_url(settings.redis_url)
    stats = probe.extra = {"alerts": 0, "dead": 0, "events": 0}

    @app.agent(inputs)
    async def update(stream: Any) -> None:
        async for event in stream.events():
            msg = event.message
            item = decoders[msg.topic](msg.key, msg.value)
            if isinstance(item, Rejection):
                await dead.send(value=f"{item.reason}: {item.error}".encode())
                stats["dead"] += 1
            else:
                now = time.time()
                for pid, ev in item.events:
                    key = f"{args.prefix}:twin:{pid}"
                    raw = await redis.get(key)
                    if raw is None:
                        doc = {"twin": TwinState(pid), "models": _models()}
                    else:
                        doc = pickle.loads(raw)
                    for values in _observations(ev):
                        _learn(doc["models"], values)
                    out = APPLIERS[type(ev)](doc["twin"], ev, cfg, now)
                    await redis.set(key, pickle.dumps(doc))
                    stats["events"] += 1
                    for alert in out or ():
                        await alerts.send(key=pid.encode(), value=alert.model_dump_json().encode())
                        stats["alerts"] += 1
            probe.hit()

    @app.timer(1.0)
    async def watchdog() -> None:
        probe.expired()

    sys.argv = [sys.argv[0]]
    faust.Worker(app, loglevel="WARNING", quiet=True).execute_from_commandline()


if __name__ == "__main__":
    main()
