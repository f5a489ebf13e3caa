"""Compatibility layer over :mod:`stream.feeds.simulator` for the demo and the old CLI.

:func:`simulate` sends the full simulated feed (profiles, bedside vitals,
labs) at the simulator's default speed, capped at ``rate`` messages per second;
:func:`vitals_stream` yields only the vitals messages, endlessly.
"""

from __future__ import annotations

from collections.abc import Iterator

from stream.feeds.physiology import SCENARIOS, SimPatient
from stream.feeds.producer import produce
from stream.feeds.simulator import DEFAULT_SPEED, SimConfig, generate, inject_faults
from stream.settings import Settings

__all__ = ["SimPatient", "simulate", "vitals_stream"]


def vitals_stream(
    patients: int, *, seed: int = 7, deteriorating: float = 0.2, malformed_every: int = 0
) -> Iterator[tuple[bytes, bytes]]:
    """Endless (key, value) vitals messages in event-time order.

    ``deteriorating`` is split evenly over the scenarios (sepsis, respiratory
    failure, haemorrhage); every ``malformed_every``-th vitals message is broken.
    """
    share = deteriorating / len(SCENARIOS)
    config = SimConfig(patients=patients, seed=seed, scenarios=dict.fromkeys(SCENARIOS, share))
    vitals = (m for m in generate(config) if m.kind == "vitals")
    for msg in inject_faults(vitals, malformed_every):
        yield msg.key, msg.value


async def simulate(
    settings: Settings,
    *,
    patients: int,
    rate: float,
    duration: float,
    seed: int = 7,
    malformed_every: int = 0,
) -> int:
    """Produce the simulated feed for ``duration`` wall seconds, at most ``rate`` msg/s.

    Returns the number of messages sent (all topics).
    """
    config = SimConfig(patients=patients, seed=seed)
    messages = inject_faults(generate(config), malformed_every)
    counts = await produce(
        settings, messages, speed=DEFAULT_SPEED, rate=rate, duration=duration or None
    )
    return sum(counts.values())
