"""Encode a :class:`~twin.state.TwinState` to compact bytes for the store, and back.

MessagePack of short positional lists, with a version tag ``"v"``; decoding
an unknown version raises :class:`CodecError` rather than guessing. Whole
seconds are stored as integers (MessagePack packs small ints in 1-5 bytes),
known rule and parameter names as small codes. A twin whose MessagePack
form is over 1,536 bytes is stored Zstandard-compressed at level -1 (one of
its "fast" levels; one reused compression context). Measured on 971 such twins
of a PhysioNet replay (``bench/core_cost.py``'s mix, 300 stays): 4.6 us per
twin at level -1 against 11.7 at level 3 (and 9.5 at level 1), for a median of
1,355 bytes against 1,280 and a largest of 1,631 against 1,487, well inside
the 2 KB a twin may take in Redis. zlib level 1 (used before level 3, still
read) cost 25.6 us for the 2,270-byte busy twin of the unit tests, much of it
setting up its 256 KB state for every twin. Smaller twins are stored as they
are: they fit the 2 KB without it. The first byte tells the forms apart: a
MessagePack map starts with 0x80-0x8f or 0xde, a Zstandard frame with 0x28,
a zlib stream with 0x78. Any Zstandard level decodes with the same decoder.
"""

from __future__ import annotations

import functools
import struct
import zlib
from collections.abc import Callable
from typing import Any, overload

import msgspec
import zstandard

from twin.state import AlertEpisode, Observation, Profile, SourceGrade, TwinState
from twin.windows import VitalWindow

__all__ = ["CODEC_VERSION", "CodecError", "decode_twin", "encode_twin", "whole_as_int"]

CODEC_VERSION = 6
_GRADES: tuple[SourceGrade, ...] = ("bedside", "wearable", "lab")
_GRADE_CODE = {grade: i for i, grade in enumerate(_GRADES)}
_COMPRESS_OVER = 1536
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_ZLIB = b"\x78"
_EXACT = 2**53  # floats within this are exact integers when whole
_BELOW_EXACT = -_EXACT  # negated once here, not at every test
_AS_IS = (str, int)  # values that pack as they are (bool is an int)

# Rule names and parameter names stored as small integers (append only: the
# position is the code). Names not listed are stored as strings.
_VITALS = ("heart_rate", "respiratory_rate", "spo2", "systolic_bp", "temperature_c")
_ANALYTES = ("potassium", "sodium", "glucose", "lactate", "haemoglobin", "ph")
_NAMES: tuple[str, ...] = (
    "news2", "qsofa", "data.stale", "news2.predicted", "lab.aki", "lab.lactate_rising",
    *(f"lab.critical.{a}" for a in _ANALYTES),
    *(f"baseline.{v}" for v in _VITALS),
    *(f"change.{v}" for v in _VITALS),
    *_VITALS, "diastolic_bp", "consciousness", "on_oxygen",
)  # fmt: skip
_CODE = {name: i for i, name in enumerate(_NAMES)}

# msgspec's MessagePack encoder and decoder, made once: the same bytes as
# msgpack-python's Packer(use_bin_type=True), which wrote twins before it (the
# codec tests check it), in 4.9 against 12.6 us for the latency bench's twins, and
# read in 7.9 against 10.5 us (bench/live_cost.py's 1,000 twins, 2026-12-07).
_pack = msgspec.msgpack.Encoder().encode
_unpack = msgspec.msgpack.Decoder().decode
# Zstandard's contexts are not thread-safe (zstandard documents its compressor
# and decompressor objects so): encode_twin and decode_twin are called from
# one thread at a time (the worker's event loop). A frame records its content
# size, so decompression allocates once.
_compress = zstandard.ZstdCompressor(level=-1).compress
_decompress = zstandard.ZstdDecompressor().decompress


def _k(name: str) -> int | str:
    return _CODE.get(name, name)


def _name(key: int | str) -> str:
    return _NAMES[key] if isinstance(key, int) else key


class CodecError(ValueError):
    """Stored twin bytes cannot be decoded: written by a newer twinstream, or corrupt.

    Upgrade the worker to the version that wrote the twin, or rebuild the twin
    by replaying the input topics into an empty store.
    """


@overload
def whole_as_int(x: float) -> int | float: ...
@overload
def whole_as_int(x: None) -> None: ...
def whole_as_int(x: float | None) -> int | float | None:
    """Whole numbers as ints: smaller on the wire, equal in value (the codec stores
    every time and number so; ``twin.apply`` keeps the NEWS2 history so).

    >>> [whole_as_int(x) for x in (3.0, 2.5, None, 7, 1e300)]
    [3, 2.5, None, 7, 1e+300]
    """
    # The range test also lets NaN and infinities through unchanged (int() of them raises).
    if type(x) is float:  # the common case, first
        return int(x) if _BELOW_EXACT < x < _EXACT and x.is_integer() else x
    if x is None or type(x) is int or not _BELOW_EXACT < x < _EXACT:
        return x
    i = int(x)
    return i if i == x else x


def _latest(latest: dict[str, Observation], newest: float) -> dict[int | str, tuple[Any, ...]]:
    # The twin's largest part, so whole_as_int is inlined for its floats. Tuples pack as
    # MessagePack arrays, like lists, and cost less to build.
    out: dict[int | str, tuple[Any, ...]] = {}
    code = _CODE.get
    grades = _GRADE_CODE
    low, high = _BELOW_EXACT, _EXACT
    # The values of one event share its time object: their age is worked out once.
    at: object = object()  # no observation's time
    ago: Any = None
    for k, o in latest.items():
        v: Any = o.value
        if type(v) is float:
            if low < v < high and v.is_integer():
                v = int(v)
        elif not isinstance(v, _AS_IS):
            v = whole_as_int(v)
        if o.at is not at:
            at = o.at
            ago = newest - o.at
            if type(ago) is float:
                if low < ago < high and ago.is_integer():
                    ago = int(ago)
            else:
                ago = whole_as_int(ago)
        out[code(k, k)] = (v, ago, grades[o.grade])
    return out


def _observations(encoded: dict[int | str, list[Any]], newest: float) -> dict[str, Observation]:
    """Inverse of :func:`_latest`."""
    out: dict[str, Observation] = {}
    names, grades = _NAMES, _GRADES
    for k, v in encoded.items():
        at: Any = newest - v[1]
        if type(at) is not int:  # whole_as_int inlined: times are mostly whole seconds, ints here
            at = whole_as_int(at)
        out[names[k] if isinstance(k, int) else k] = Observation(v[0], at, grades[v[2]])
    return out


def encode_twin(state: TwinState) -> bytes:
    """Serialise ``state`` (folding its live learned models into ``state.learned``).

    >>> s = TwinState("p1", latest={"heart_rate": Observation(80.0, at=1.5)}, events_applied=1)
    >>> decode_twin(encode_twin(s)) == s
    True
    """
    p = state.profile
    newest = state.newest_event_at or 0.0
    if state.models is not None:
        state.learned = state.models.encode()
    doc: dict[str, Any] = {
        "v": CODEC_VERSION,
        "id": state.patient_id,
        "n": state.events_applied,
        "lv": whole_as_int(state.last_vitals_at),
        "ne": whole_as_int(state.newest_event_at),
        # Times of latest values relative to the newest event: small integers.
        "l": _latest(state.latest, newest),
        "w": {_CODE.get(k, k): w.to_ints() for k, w in state.windows.items()},
        "p": None
        if p is None
        else [
            p.age,
            p.sex,
            p.ward,
            p.region,
            p.spo2_scale,
            p.conditions,
            whole_as_int(p.updated_at),
        ],
        "lh": {
            k: [(whole_as_int(t), whole_as_int(v)) for t, v in h]
            for k, h in state.lab_history.items()
        },
        # Whole times are ints already (twin.apply appends them so).
        "h": state.news2_history,
        "hm": state.news2_max,
        "r": b"".join(state.recent_ids),
        # The comprehensions are skipped when empty (most twins have no open alerts).
        "a": {
            _k(k): [
                e.episode,
                e.kind,
                e.severity,
                whole_as_int(e.opened_at),
                whole_as_int(e.last_firing_at),
                whole_as_int(e.clear_since),
                whole_as_int(e.acked_until),
                whole_as_int(e.last_notified_at),
            ]
            for k, e in state.open_alerts.items()
        }
        if state.open_alerts
        else {},
        "e": {_k(k): v for k, v in state.episodes.items()} if state.episodes else {},
        "c": {_k(k): whole_as_int(v) for k, v in state.cooldown_until.items()}
        if state.cooldown_until
        else {},
        "m": state.learned,
        "k": [
            whole_as_int(state.risk),
            whole_as_int(state.risk_at),
            whole_as_int(state.anomaly),
            whole_as_int(state.first_event_at),
        ],
        "o": state.outcomes,
    }
    packed: bytes = _pack(doc)
    return _compress(packed) if len(packed) > _COMPRESS_OVER else packed


@functools.lru_cache(maxsize=64)
def _split6(count: int) -> Callable[[bytes], tuple[bytes, ...]]:
    return struct.Struct("6s" * count).unpack


def _fingerprints(joined: bytes) -> list[bytes]:
    """The 6-byte fingerprints joined in ``joined``, split in one call (not 32 slices).

    >>> _fingerprints(b"abcdefghijkl"), _fingerprints(b"abcdefgh")
    ([b'abcdef', b'ghijkl'], [b'abcdef', b'gh'])
    """
    if len(joined) % 6:  # not written by encode_twin: sliced as it comes
        return [joined[i : i + 6] for i in range(0, len(joined), 6)]
    return list(_split6(len(joined) // 6)(joined))


def decode_twin(raw: bytes) -> TwinState:
    """Inverse of :func:`encode_twin`."""
    try:
        if raw[:4] == _ZSTD_MAGIC:
            raw = _decompress(raw)
        elif raw[:1] == _ZLIB:  # written by twinstream before Zstandard (same version)
            raw = zlib.decompress(raw)
        doc = _unpack(raw)
    except (ValueError, zlib.error, zstandard.ZstdError) as exc:  # msgspec.DecodeError is one
        raise CodecError("stored twin is not valid MessagePack") from exc
    if not isinstance(doc, dict) or doc.get("v") != CODEC_VERSION:
        version = doc.get("v") if isinstance(doc, dict) else None
        raise CodecError(f"unsupported twin codec version {version!r}")
    p = doc["p"]
    recent: bytes = doc["r"]
    newest = doc["ne"] or 0.0
    return TwinState(
        patient_id=doc["id"],
        latest=_observations(doc["l"], newest),
        windows={_name(k): VitalWindow.from_ints(flat) for k, flat in doc["w"].items()},
        profile=None if p is None else Profile(p[0], p[1], p[2], p[3], p[4], list(p[5]), p[6]),
        lab_history={k: [(t, v) for t, v in h] for k, h in doc["lh"].items()},
        news2_history=[(t, total) for t, total in doc["h"]],
        news2_max=doc["hm"],
        events_applied=doc["n"],
        last_vitals_at=doc["lv"],
        newest_event_at=doc["ne"],
        recent_ids=_fingerprints(recent),
        open_alerts={_name(k): AlertEpisode(_name(k), *v) for k, v in doc["a"].items()},
        episodes={_name(k): v for k, v in doc["e"].items()},
        cooldown_until={_name(k): v for k, v in doc["c"].items()},
        learned=doc["m"],
        risk=doc["k"][0],
        risk_at=doc["k"][1],
        anomaly=doc["k"][2],
        first_event_at=doc["k"][3],
        outcomes=dict(doc["o"]),
    )
