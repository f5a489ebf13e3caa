"""Garbage collection for a worker that holds many long-lived twins.

CPython's cyclic collector walks every tracked object of the oldest generation
in a full collection. A worker's hot twins are millions of such objects, and
with Python's schedule (every ~100 M allocations with the thresholds below) a
full collection came every minute or two on a live feed and stopped the event
loop each time (450 ms in a bench latency run on a loaded machine; 10,100 twins
held 1.44 M tracked objects and took 1.5-1.8 s to collect).

Here objects that survive two young collections are frozen (``gc.freeze``,
moved to the permanent generation, which automatic collections skip), so those
stay cheap, and a full collection of everything runs on a schedule instead
(:func:`full_collection`, every ``TWIN_GC_FULL_MINUTES``; its duration is
logged): one known pause an hour rather than one every minute or two. Objects
freed by reference counting are freed at once either way; only cyclic garbage
that outlived two young collections waits for the scheduled collection. Twins
hold no reference cycles: replaying 100 stays and 1,000 simulated patients and
dropping every twin leaves no unreachable object (river's PageHinkley, which
kept a bound method of itself, left 15,447 before the drift detector kept its
own state).
"""

from __future__ import annotations

import gc
import logging
import time
from typing import Any

__all__ = ["full_collection", "install", "uninstall"]

log = logging.getLogger(__name__)

# Young collections every 50,000 allocations rather than 700: a batch of events
# allocates far more than 700 short-lived objects.
THRESHOLDS = (50_000, 20, 100)


def _freeze_survivors(phase: str, info: dict[str, Any]) -> None:
    # After a collection of generation 1 or 2, what survived sits in the oldest
    # generation: move it to the permanent one, which automatic collections skip.
    if phase == "stop" and info["generation"] >= 1:
        gc.freeze()


def install(freeze_survivors: bool = True) -> None:
    """Freeze what start-up allocated, set :data:`THRESHOLDS`, and (by default)
    freeze survivors of every older-generation collection from now on.

    >>> import gc
    >>> saved = gc.get_threshold()
    >>> install()
    >>> gc.get_threshold() == THRESHOLDS and _freeze_survivors in gc.callbacks
    True
    >>> uninstall(saved)
    >>> _freeze_survivors in gc.callbacks
    False
    """
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
    if freeze_survivors and _freeze_survivors not in gc.callbacks:
        gc.callbacks.append(_freeze_survivors)


def uninstall(thresholds: tuple[int, int, int] = (700, 10, 10)) -> None:
    """Undo :func:`install`: no freezing callback, ``thresholds``, nothing frozen."""
    if _freeze_survivors in gc.callbacks:
        gc.callbacks.remove(_freeze_survivors)
    gc.set_threshold(*thresholds)
    gc.unfreeze()


def full_collection() -> tuple[int, float]:
    """Collect every generation, the frozen objects included, then freeze the
    survivors again; return (unreachable objects found, seconds taken)."""
    started = time.perf_counter()
    gc.unfreeze()
    found = gc.collect()
    gc.freeze()
    took = time.perf_counter() - started
    log.info("full garbage collection: %d unreachable objects, %.0f ms", found, took * 1000)
    return found, took
