"""Fill an in-memory twin store the way the worker does: the real core applies the
events, the codec encodes the twins, and the store commits them per partition."""

from __future__ import annotations

import zlib
from collections import defaultdict
from datetime import UTC, datetime

from schemas.profiles import PatientProfile
from schemas.vitals import VitalsEvent
from stream.settings import Settings
from stream.store import MemoryTwinStore
from twin.apply import apply_profile, apply_vitals
from twin.codec import encode_twin
from twin.state import TwinState

__all__ = ["NORMAL", "T0", "build_store", "ward_population"]

T0 = 1_800_000_000.0
NORMAL: dict[str, object] = {
    "heart_rate": 75.0,
    "respiratory_rate": 16.0,
    "spo2": 97.0,
    "systolic_bp": 122.0,
    "diastolic_bp": 78.0,
    "temperature_c": 37.0,
    "consciousness": "A",
    "on_oxygen": False,
}

Patient = tuple[str | None, str | None, list[dict[str, object]]]
"""ward, region, vitals sets (10 minutes apart)."""


def ward_population() -> dict[str, Patient]:
    """p-high (NEWS2 8), p-med (5), p-red (3 in one parameter), six low, one without vitals."""
    worse = [dict(NORMAL) for _ in range(6)]
    worse[-1].update(respiratory_rate=26.0, spo2=90.0, systolic_bp=95.0)  # 3 + 3 + 2
    worse[-2].update(respiratory_rate=22.0)
    pop: dict[str, Patient] = {
        "p-high": ("A", "north", worse),
        "p-med": (
            "A",
            "north",
            [{**NORMAL, "respiratory_rate": 22.0, "heart_rate": 115.0, "temperature_c": 38.5}],
        ),
        "p-red": ("A", "north", [{**NORMAL, "spo2": 91.0}]),
        "p-none": ("B", "south", []),
    }
    for i in range(6):
        pop[f"p-low{i}"] = ("A" if i < 3 else "B", "north" if i < 3 else "south", [dict(NORMAL)])
    return pop


async def build_store(
    settings: Settings, population: dict[str, Patient] | None = None
) -> MemoryTwinStore:
    """A memory store holding the twins of ``population`` (default :func:`ward_population`)."""
    cfg = settings.twin_config()
    store = MemoryTwinStore(settings.partitions)
    parts: dict[int, dict[str, bytes]] = defaultdict(dict)
    for pid, (ward, region, sets) in (population or ward_population()).items():
        twin = TwinState(pid)
        profile = PatientProfile(patient_id=pid, age=70, ward=ward, region=region)
        apply_profile(twin, profile, cfg, T0)
        for i, values in enumerate(sets):
            at = datetime.fromtimestamp(T0 + i * 600, tz=UTC)
            event = VitalsEvent.model_validate(
                {"event_id": f"{pid}:{i}", "patient_id": pid, "observed_at": at, **values}
            )
            apply_vitals(twin, event, cfg, T0 + i * 600)
        parts[zlib.crc32(pid.encode()) % settings.partitions][pid] = encode_twin(twin)
    for partition, twins in parts.items():
        claim = await store.claim_partition(partition)
        await store.commit_batch(
            partition,
            claim.epoch,
            twins,
            {settings.topic_vitals: len(twins)},
            counters={"consumed": len(twins), "applied": len(twins), "dead.invalid": 1},
        )
    return store
