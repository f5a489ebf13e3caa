"""What decoding and validating one input message costs, per kind, in the worker's decoder.

Run from the repository root::

    .venv/bin/python -m bench.decode_cost [--stays 400] [--patients 2000] [--hours 2]

The bench's main mix (``bench.inputs.main_mix``) is built once; then each
repeat runs every message through the decoder a worker uses for its topic
(``stream.handlers.decoders_for``: ``schemas.decode.decode`` plus the record
key check). Printed: µs of process CPU time per message, best and median of
the repeats, overall and per kind.

Also decoded, once and untimed: mutants of the first messages of each kind
(values out of range, wrong types, nulls, missing and unknown fields, empty
and mixed batches), so the rejections are exercised too, and the mutants again
as Python objects through ``model_validate`` (the FHIR decoder's path). The
digests cover every decoded event (``model_dump_json``) and every rejection
(reason and error text); they must not change when decoding is only made
cheaper.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import statistics
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
from pydantic import ValidationError

from bench.inputs import main_mix
from schemas.decode import Rejection, describe_validation_error
from schemas.export import CONTRACTS
from stream.handlers import Decoded, TopicDecoder, decoders_for
from stream.settings import Settings

__all__ = ["digest_of", "main", "mutants", "python_digest"]

DEFAULT_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "physionet2012"
_MUTANTS_PER_KIND = 40
_MODELS = CONTRACTS  # feed kind -> contract model
_TIMES = frozenset({"observed_at", "updated_at"})
# Replacement values tried in every field: out of range both ways, wrong types, edge numbers.
_ODD_VALUES: tuple[Any, ...] = (
    None,
    -1,
    -0.5,
    0,
    1e9,
    -1e9,
    400,
    10**7,
    "80",
    True,
    [],
    {},
    "",
    "x" * 300,
    # the plausibility bounds of every field, and just past them
    *(
        b + d
        for b in (5, 10, 20, 25, 45, 80, 100, 130, 200, 300, 500, 100_000)
        for d in (0, 0.01, 1)
    ),
    -0.01,
    1.5,
    2,
)
# Lab fields changed one at a time: aliases, other analytes' codes and units, scaled values.
_LAB_CHANGES: tuple[dict[str, Any], ...] = (
    {"analyte": "hemoglobin"},
    {"analyte": "glucose"},
    {"loinc": "2345-7"},
    {"loinc": "2823-3"},
    {"unit": "mg/dL"},
    {"unit": "umol/L"},
    {"unit": " MMOL/l "},
    {"unit": "g/furlong"},
)


def _decoders() -> dict[str, TopicDecoder]:
    settings = Settings()
    by_topic = decoders_for(settings)
    kinds = ("vitals", "labs", "wearables", "profiles", "outcomes")
    return {kind: by_topic[getattr(settings, f"topic_{kind}")] for kind in kinds}


def _variants(doc: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for name in list(doc):
        for odd in _ODD_VALUES:
            yield {**doc, name: odd}
        yield {k: v for k, v in doc.items() if k != name}
    yield {**doc, "unexpected": 1}
    if "analyte" in doc:
        yield from ({**doc, **change} for change in _LAB_CHANGES)
        if isinstance(doc.get("value"), int | float):
            yield from ({**doc, "value": doc["value"] * f} for f in (1000, -1, 0.001))
    readings = doc.get("readings")
    if isinstance(readings, list) and readings:
        first = readings[0]
        yield {**doc, "readings": []}
        yield {**doc, "readings": [{"observed_at": first.get("observed_at")}]}
        yield {**doc, "readings": readings, "heart_rate": 70}
        for name in list(first):
            for odd in _ODD_VALUES:
                yield {**doc, "readings": [{**first, name: odd}, *readings[1:]]}
        yield {**doc, "readings": [{**first, "heart_rate": 999}, {**first, "spo2": -3}]}


def mutants(mix: list[tuple[str, bytes, bytes]]) -> list[tuple[str, bytes, bytes]]:
    """Broken copies of the first messages of each kind (deterministic)."""
    seen: Counter[str] = Counter()
    out: list[tuple[str, bytes, bytes]] = []
    for kind, key, value in mix:
        if seen[kind] >= _MUTANTS_PER_KIND:
            continue
        seen[kind] += 1
        doc = orjson.loads(value)
        out.extend((kind, key, orjson.dumps(v)) for v in _variants(doc))
        out.extend([(kind, key, b"not json"), (kind, key, b"[1]"), (kind, key, value[:-1])])
    return out


def _result_text(result: Decoded | Rejection) -> bytes:
    if isinstance(result, Rejection):
        return f"R {result.reason} {result.error}".encode()
    return b"".join(
        pid.encode() + b" " + type(ev).__name__.encode() + ev.model_dump_json().encode()
        for pid, ev in result.events
    )


def digest_of(msgs: list[tuple[str, bytes, bytes]], decoders: dict[str, TopicDecoder]) -> str:
    """sha256 (first 16 hex digits) of every message's decoded events or rejection."""
    sha = hashlib.sha256()
    for kind, key, value in msgs:
        sha.update(_result_text(decoders[kind](key, value)))
        sha.update(b"\n")
    return sha.hexdigest()[:16]


def _as_time(value: str) -> datetime | str:
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return value


def _python_form(node: Any) -> Any:
    # The FHIR decoder validates Python objects: times as datetimes, not strings.
    if isinstance(node, dict):
        return {
            k: _as_time(v) if k in _TIMES and isinstance(v, str) else _python_form(v)
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_python_form(item) for item in node]
    return node


def python_digest(msgs: list[tuple[str, bytes, bytes]]) -> str:
    """Like :func:`digest_of`, for ``model_validate`` of the messages as Python objects."""
    sha = hashlib.sha256()
    for kind, _key, value in msgs:
        try:
            doc = _python_form(orjson.loads(value))
        except orjson.JSONDecodeError:
            continue
        try:
            text = _MODELS[kind].model_validate(doc).model_dump_json()
        except ValidationError as exc:
            text = "R {} {}".format(*describe_validation_error(exc))
        sha.update(text.encode() + b"\n")
    return sha.hexdigest()[:16]


def _timed(msgs: list[tuple[str, bytes, bytes]], decoders: dict[str, TopicDecoder]) -> float:
    clock = time.process_time
    pairs = [(decoders[kind], key, value) for kind, key, value in msgs]
    gc.collect()
    t0 = clock()
    for run, key, value in pairs:
        run(key, value)
    return clock() - t0


def main(argv: list[str] | None = None) -> None:
    """Command line: build the mix, time its decoding, print µs/message and the digest."""
    parser = argparse.ArgumentParser(prog="python -m bench.decode_cost", description=__doc__)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--stays", type=int, default=400)
    parser.add_argument("--patients", type=int, default=2000)
    parser.add_argument("--hours", type=float, default=2.0)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)

    decoders = _decoders()
    mix = [
        (kind, key, value)
        for kind, key, value in main_mix(args.data, args.stays, args.patients, args.hours, [])
    ]
    by_kind: dict[str, list[tuple[str, bytes, bytes]]] = defaultdict(list)
    for msg in mix:
        by_kind[msg[0]].append(msg)
    broken = mutants(mix)
    rejected = Counter(
        r.reason for k, key, v in broken if isinstance(r := decoders[k](key, v), Rejection)
    )
    print(f"messages {len(mix)}: " + ", ".join(f"{k} {len(v)}" for k, v in by_kind.items()))
    print(f"mutants {len(broken)}, rejected: {dict(sorted(rejected.items()))}")

    groups = {"all": mix, **by_kind}
    times: dict[str, list[float]] = {name: [] for name in groups}
    for _ in range(args.repeats):
        for name, msgs in groups.items():
            times[name].append(_timed(msgs, decoders) / len(msgs) * 1e6)
    for name, runs in times.items():
        print(
            f"{name:>10}: best {min(runs):7.2f} µs/msg, "
            f"median {statistics.median(runs):7.2f} ({len(groups[name])} msgs)"
        )
    print(
        f"digest mix {digest_of(mix, decoders)} mutants {digest_of(broken, decoders)}"
        f" python {python_digest(broken)}"
    )


if __name__ == "__main__":
    main()
