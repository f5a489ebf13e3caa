"""Fill an in-memory twin store the way the worker does: the real core applies the
events, the codec encodes the twins, and the store commits them per partition."""

from __future__ import annotations

import contextlib
import zlib
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx

from schemas.alert import Alert
from schemas.profiles import PatientProfile
from schemas.vitals import VitalsEvent
from stream.api import create_api
from stream.api.acks import MemoryAckPublisher
from stream.api.feed import AlertFeed
from stream.settings import Settings
from stream.store import BatchCommit, MemoryTwinStore
from twin.alerting import alert_id
from twin.apply import apply_profile, apply_vitals
from twin.codec import encode_twin
from twin.state import TwinState

__all__ = [
    "NORMAL",
    "T0",
    "ApiStack",
    "api_stack",
    "build_store",
    "sample_alert",
    "ward_population",
]

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
            BatchCommit(
                partition,
                claim.epoch,
                twins,
                {settings.topic_vitals: len(twins)},
                counters={"consumed": len(twins), "applied": len(twins), "dead.invalid": 1},
            )
        )
    return store


@dataclass
class ApiStack:
    """The in-memory ports behind an API under test."""

    store: MemoryTwinStore
    acks: MemoryAckPublisher
    feed: AlertFeed


@contextlib.asynccontextmanager
async def api_stack(token: str) -> AsyncIterator[tuple[httpx.AsyncClient, ApiStack]]:
    """An httpx client on the API app (in-process ASGI) over :func:`build_store`'s twins."""
    settings = Settings(api_token=token, partitions=4)
    store = await build_store(settings)
    acks, feed = MemoryAckPublisher(), AlertFeed(capacity=50)
    app = create_api(settings, store, acks, feed=feed)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        yield client, ApiStack(store, acks, feed)


def sample_alert(pid: str = "p-high", status: str = "open", severity: str = "high") -> Alert:
    """A news2 alert of episode 1 of ``pid``."""
    at = datetime.fromtimestamp(T0, tz=UTC)
    return Alert(
        alert_id=alert_id(pid, "news2", 1), patient_id=pid, kind="deterioration",
        severity=severity, status=status, rule="news2", observed_at=at, emitted_at=at,
    )  # fmt: skip
