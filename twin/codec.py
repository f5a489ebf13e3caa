"""Encode a :class:`~twin.state.TwinState` to bytes for the store, and back.

The encoding is compact JSON (orjson) with a version tag ``"v"``; decoding an
unknown version raises :class:`CodecError` rather than guessing.
"""

from __future__ import annotations

from typing import Any

import orjson

from twin.state import AlertEpisode, Observation, TwinState

__all__ = ["CODEC_VERSION", "CodecError", "decode_twin", "encode_twin"]

CODEC_VERSION = 1


class CodecError(ValueError):
    """Stored twin bytes cannot be decoded: written by a newer twinstream, or corrupt.

    Upgrade the worker to the version that wrote the twin, or restore the twin
    from the Kafka topics by replaying them into an empty store.
    """


def encode_twin(state: TwinState) -> bytes:
    """Serialise ``state``.

    >>> s = TwinState("p1", latest={"heart_rate": Observation(80.0, at=1.5)}, events_applied=1)
    >>> decode_twin(encode_twin(s)) == s
    True
    """
    doc: dict[str, Any] = {
        "v": CODEC_VERSION,
        "id": state.patient_id,
        "n": state.events_applied,
        "lv": state.last_vitals_at,
        "l": {k: [o.value, o.at, o.grade] for k, o in state.latest.items()},
        "a": {
            k: [e.episode, e.severity, e.opened_at, e.last_firing_at]
            for k, e in state.open_alerts.items()
        },
        "e": state.episodes,
    }
    return orjson.dumps(doc)


def decode_twin(raw: bytes) -> TwinState:
    """Inverse of :func:`encode_twin`."""
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise CodecError("stored twin is not valid JSON") from exc
    if not isinstance(doc, dict) or doc.get("v") != CODEC_VERSION:
        raise CodecError(f"unsupported twin codec version {doc.get('v')!r}")
    return TwinState(
        patient_id=doc["id"],
        latest={k: Observation(v[0], v[1], v[2]) for k, v in doc["l"].items()},
        events_applied=doc["n"],
        last_vitals_at=doc["lv"],
        open_alerts={k: AlertEpisode(k, v[0], v[1], v[2], v[3]) for k, v in doc["a"].items()},
        episodes=dict(doc["e"]),
    )
