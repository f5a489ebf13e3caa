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

import contextlib
import gc
import logging
import time
from collections.abc import Iterator
from typing import Any

__all__ = ["full_collection", "install", "paused", "uninstall"]

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


_pauses = 0


@contextlib.contextmanager
def paused() -> Iterator[None]:
    """No automatic collection inside the block (nested blocks and blocks of
    concurrent tasks too); the collector runs again once the last one ends.

    For a batch of events: what a batch allocates and drops (its decoded
    messages, records, intermediate values) is freed by reference counting when
    the batch ends, before a collection could traverse it. Left running, the
    collector traversed it again and again while the batch held it: on the
    full bench input 210 young collections of 17 ms and 10 middle ones of
    190 ms, 7.9 % of the worker's CPU (a worker with ``gc.callbacks`` timing).
    When the last block ends, what it left alive is frozen (with :func:`install`'s
    freezing of survivors on): the twins' new state, which would otherwise be
    traversed by the young collection the batch's allocations start right after
    it. Cyclic garbage made inside a block therefore waits for the scheduled
    :func:`full_collection`. There is next to none: on the full bench input a
    worker's full collections every 15 s found 0 unreachable objects once it ran
    (85 and 35 in the first two, start-up's); a batch that waits for an
    unavailable store or broker (the updater retries inside the block) adds a
    failed attempt's exception and traceback every few seconds. Without the
    freezing policy, cyclic garbage waits for the next collection after the block.

    >>> import gc
    >>> with paused():
    ...     with paused():
    ...         inner = gc.isenabled()
    ...     outer = gc.isenabled()
    >>> inner, outer, gc.isenabled()
    (False, False, True)
    """
    global _pauses
    if _pauses == 0 and not gc.isenabled():
        yield  # someone else turned it off: theirs to turn back on
        return
    _pauses += 1
    gc.disable()
    try:
        yield
    finally:
        _pauses -= 1
        if _pauses == 0:
            if _freeze_survivors in gc.callbacks:
                # What the batch left alive is the twins' new state, long-lived and
                # acyclic; its garbage went with reference counting. Frozen here, it
                # is not traversed by the young collection the batch's allocations
                # would start right after (about 2-4 us per event on the bench input:
                # 47 ms per batch of ~12,600 records). Cyclic garbage made while the
                # collector was paused waits for the scheduled full collection.
                gc.freeze()
            gc.enable()
