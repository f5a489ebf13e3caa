"""What the pure core costs per event: apply, learning, codec, without Kafka or Redis.

Run from the repository root::

    .venv/bin/python -m bench.core_cost [--stays 100] [--patients 2000] [--hours 0.5]
    .venv/bin/python -m bench.core_cost --profile   # cProfile of one replay instead
    .venv/bin/python -m bench.core_cost --by-kind   # then CPU per event by source and kind

The bench's main mix (``bench.inputs.main_mix``: PhysioNet 2012 stays when
``--data`` holds them, then simulated patients with wearables) is decoded
once, outside the timing; then each repeat replays it into fresh
twins the way ``stream.updater.TwinUpdater._apply_and_commit`` does: the
event's applier (``stream.handlers.APPLIERS``), then the partition models
(``PartitionModels.after_vitals`` / ``on_outcome``), and every ``--batch``
events the changed twins are encoded (``encode_twin``), and each encoded twin
is decoded (``decode_twin``, timed, then dropped: a worker keeps its twins hot).

Printed per event, in CPU time of the process, best and median of the
repeats (these 2-core machines are shared and noisy: compare best-of-N within
one run): the whole replay, and the apply + learning part, the encoding and the
decoding alone. ``--focus 60 --no-gc --repeats 20`` replays the 60 busiest
PhysioNet stays only, without the collector: a steadier figure for a change of
a few µs. Also printed: a digest of
every alert, anomaly and risk score and encoded twin, which must not change
when the core is only made faster.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import hashlib
import pstats
import statistics
import time
import zlib
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import zstandard
from pydantic import BaseModel

from bench.inputs import main_mix
from schemas.decode import Rejection, decode
from schemas.export import CONTRACTS
from schemas.outcomes import OutcomeEvent
from schemas.vitals import VitalsEvent
from stream.handlers import APPLIERS
from twin.codec import decode_twin, encode_twin
from twin.config import TwinConfig
from twin.learning.risk import RiskModel
from twin.population import PartitionModels
from twin.state import TwinState

_MODELS = CONTRACTS  # feed kind -> contract model
DEFAULT_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "physionet2012"
_NOW = datetime(2026, 1, 2, tzinfo=UTC).timestamp()


def events(data_dir: Path, stays: int, patients: int, hours: float) -> list[tuple[str, BaseModel]]:
    """The bench's main mix (``bench.inputs.main_mix``), decoded: (patient_id, event)."""
    out: list[tuple[str, BaseModel]] = []
    for kind, key, value in main_mix(data_dir, stays, patients, hours, []):
        item = decode(_MODELS[kind], value)
        if not isinstance(item, Rejection):
            out.append((key.decode(), item))
    return out


def _content(raw: bytes) -> bytes:
    """A stored twin's MessagePack form: the digest covers what is stored, not how
    it is compressed (Zstandard since session 6, zlib before: same digests)."""
    if raw[:4] == b"\x28\xb5\x2f\xfd":
        return zstandard.ZstdDecompressor().decompress(raw)
    return zlib.decompress(raw) if raw[:1] == b"\x78" else raw


def _source(pid: str) -> str:
    """``physionet`` or ``sim`` (the bench's patient ids), else ``other``."""
    head = pid.split("-", 1)[0]
    return head if head in ("physionet", "sim") else "other"


def _tally(cells: dict[str, list[float]], name: str, seconds: float) -> None:
    cell = cells.setdefault(name, [0.0, 0])
    cell[0] += seconds
    cell[1] += 1


def replay(
    evs: list[tuple[str, BaseModel]],
    batch: int,
    digest: Any = None,
    by_kind: dict[str, list[float]] | None = None,
) -> tuple[float, float, float]:
    """One replay into fresh twins; seconds of apply + learning, encode, decode.

    With ``by_kind``, each event's apply + learning and each twin's encoding are
    also timed one by one (CPU seconds, count) under ``source/EventType`` and
    ``source/encode``: what the mix's parts cost, not the fastest replay."""
    cfg = TwinConfig()
    models = PartitionModels(RiskModel())
    models.anomaly.prepare()
    twins: dict[str, TwinState] = {}
    changed: dict[str, TwinState] = {}
    core = encoding = decoding = 0.0
    clock = time.process_time  # CPU time: the machine is shared
    for start in range(0, len(evs), batch):
        t0 = clock()
        for pid, event in evs[start : start + batch]:
            e0 = clock() if by_kind is not None else 0.0
            twin = twins.get(pid)
            if twin is None:
                twin = twins[pid] = TwinState(pid)
            alerts = APPLIERS[type(event)](twin, event, cfg, _NOW)
            if alerts is None:
                continue
            if isinstance(event, OutcomeEvent):
                models.on_outcome(twin, event)
            elif twin.signals:
                models.after_vitals(twin)
            if by_kind is not None:
                _tally(by_kind, f"{_source(pid)}/{type(event).__name__}", clock() - e0)
            changed[pid] = twin
            if digest is not None:
                for a in alerts:
                    digest.update(a.model_dump_json().encode())
                digest.update(repr((twin.anomaly, twin.risk)).encode())
        t1 = clock()
        if by_kind is None:
            encoded = {pid: encode_twin(t) for pid, t in changed.items()}
        else:
            encoded = {}
            for pid, t in changed.items():
                e0 = clock()
                encoded[pid] = encode_twin(t)
                _tally(by_kind, f"{_source(pid)}/encode", clock() - e0)
        t2 = clock()
        # Decoded and dropped: a worker keeps its twins hot, decoding them once
        # per load, but the cost per twin is the same.
        for raw in encoded.values():
            decode_twin(raw)
        t3 = clock()
        core += t1 - t0
        encoding += t2 - t1
        decoding += t3 - t2
        if digest is not None:
            for pid in sorted(encoded):
                digest.update(_content(encoded[pid]))
        changed.clear()
    return core, encoding, decoding


def digest(data_dir: Path, stays: int, patients: int, hours: float, batch: int = 1000) -> str:
    """The digest ``main`` prints, of one replay of that mix: every alert, every
    score and every encoded twin (the same with the core compiled or not)."""
    h = hashlib.sha256()
    replay(events(data_dir, stays, patients, hours), batch, h)
    return h.hexdigest()[:16]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="physionet2012 folder")
    parser.add_argument("--stays", type=int, default=100)
    parser.add_argument("--patients", type=int, default=2000)
    parser.add_argument("--hours", type=float, default=0.5)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--focus",
        type=int,
        default=0,
        metavar="N",
        help="replay only the N patients with the most vitals (short, steadier runs)",
    )
    parser.add_argument("--no-gc", action="store_true", help="collector off while timing")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument(
        "--by-kind",
        action="store_true",
        help="then one more replay, timing each event and encoding: CPU by source and kind",
    )
    args = parser.parse_args()
    evs = events(args.data, args.stays, args.patients, args.hours)
    if args.focus:
        vitals = Counter(pid for pid, e in evs if isinstance(e, VitalsEvent))
        chosen = {pid for pid, _ in vitals.most_common(args.focus)}
        evs = [(pid, e) for pid, e in evs if pid in chosen]
    kinds = Counter(type(e).__name__ for _, e in evs)
    print(f"{len(evs)} events ({dict(kinds.most_common())}), batch {args.batch}")
    # The decoded inputs are not the core's: out of the collector's sight, as
    # a worker's transient messages are (full collections would walk them all).
    gc.collect()
    gc.freeze()
    h = hashlib.sha256()
    replay(evs, args.batch, h)
    print(f"digest {h.hexdigest()[:16]}")
    if args.profile:
        profiler = cProfile.Profile()
        profiler.enable()
        replay(evs, args.batch)
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(40)
        return
    runs = []
    for _ in range(args.repeats):
        gc.collect()
        if args.no_gc:
            gc.disable()
        runs.append(replay(evs, args.batch))
        gc.enable()
    n = len(evs) / 1e6
    for label, values in (
        ("total", [sum(r) for r in runs]),
        ("apply + learning", [r[0] for r in runs]),
        ("encode", [r[1] for r in runs]),
        ("decode", [r[2] for r in runs]),
    ):
        us = [v / n for v in values]
        print(f"{label:>17}: best {min(us):6.1f} µs/event, median {statistics.median(us):6.1f}")
    if args.by_kind:
        cells: dict[str, list[float]] = {}
        gc.collect()
        if args.no_gc:
            gc.disable()
        replay(evs, args.batch, by_kind=cells)
        gc.enable()
        whole = sum(seconds for seconds, _ in cells.values())
        print("one replay, each event (apply + learning) and each encoding timed:")
        for name, (seconds, count) in sorted(cells.items(), key=lambda kv: -kv[1][0]):
            print(
                f"  {name:>28}: {int(count):>8,} x {seconds / count * 1e6:6.1f} µs"
                f" = {seconds:6.2f} s ({seconds / whole:5.1%})"
            )


if __name__ == "__main__":
    main()
