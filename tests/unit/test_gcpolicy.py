"""stream.gcpolicy: survivors of young collections are frozen, so automatic
collections skip them; the scheduled full collection still finds their garbage."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from stream import gcpolicy

pytestmark = pytest.mark.unit


class Node:
    """An object in a reference cycle with itself."""

    def __init__(self) -> None:
        self.me = self


@pytest.fixture
def policy() -> Iterator[None]:
    saved = gc.get_threshold()
    gcpolicy.install()
    try:
        yield
    finally:
        gcpolicy.uninstall(saved)


def test_old_cyclic_garbage_waits_for_the_full_collection(policy: None) -> None:
    node = Node()
    alive = weakref.ref(node)
    gc.collect(1)  # node survives a collection of generation 1: it is frozen
    assert gc.get_freeze_count() > 0
    del node
    gc.collect()  # an automatic-style collection skips the frozen objects
    assert alive() is not None
    found, seconds = gcpolicy.full_collection()
    assert alive() is None and found >= 1 and seconds >= 0
    assert gc.get_freeze_count() > 0  # the survivors are frozen again


def test_young_cyclic_garbage_is_collected_as_usual(policy: None) -> None:
    node = Node()
    alive = weakref.ref(node)
    del node
    gc.collect(0)
    assert alive() is None


def test_without_the_policy_nothing_is_frozen() -> None:
    gcpolicy.install(freeze_survivors=False)
    try:
        gc.unfreeze()
        node = Node()
        alive = weakref.ref(node)
        gc.collect(1)
        assert gc.get_freeze_count() == 0
        del node
        gc.collect()
        assert alive() is None
    finally:
        gcpolicy.uninstall()


def test_twins_hold_no_reference_cycles() -> None:
    # Frozen twins are freed by reference counting alone: a twin in a reference
    # cycle would wait for the scheduled full collection once evicted.
    from datetime import UTC, datetime

    from schemas.decode import Rejection, decode
    from schemas.export import CONTRACTS
    from stream.feeds.simulator import SimConfig, generate
    from stream.handlers import APPLIERS
    from twin.codec import decode_twin, encode_twin
    from twin.config import TwinConfig
    from twin.learning.risk import RiskModel
    from twin.population import PartitionModels
    from twin.state import TwinState

    start = datetime(2026, 1, 1, tzinfo=UTC)
    config = SimConfig(patients=12, seed=3, start=start, wearables=True, hours=3.0)
    cfg, models = TwinConfig(), PartitionModels(RiskModel())
    twins: dict[str, TwinState] = {}
    for msg in generate(config):
        event = decode(CONTRACTS[msg.kind], msg.value)
        assert not isinstance(event, Rejection)
        twin = twins.setdefault(msg.key.decode(), TwinState(msg.key.decode()))
        alerts = APPLIERS[type(event)](twin, event, cfg, start.timestamp() + 4 * 3600)
        if alerts is not None and twin.signals:
            models.after_vitals(twin)
    loaded = [decode_twin(encode_twin(t)) for t in twins.values()]
    assert sum(t.events_applied for t in loaded) > 12 * 20
    gc.collect()
    twins.clear()
    loaded.clear()
    assert gc.collect() == 0


def test_a_paused_block_leaves_what_it_kept_frozen(policy: None) -> None:
    gc.collect()
    before = gc.get_freeze_count()
    with gcpolicy.paused():
        kept = [[i] for i in range(1000)]  # a batch's new twin state, say
        node = Node()
    assert gc.get_freeze_count() >= before + len(kept)
    alive = weakref.ref(node)
    del node
    gc.collect()  # automatic collections skip it: frozen with the rest
    assert alive() is not None
    gcpolicy.full_collection()
    assert alive() is None


def test_a_paused_block_freezes_nothing_without_the_policy() -> None:
    saved = gc.get_threshold()
    gcpolicy.install(freeze_survivors=False)
    try:
        gc.unfreeze()
        with gcpolicy.paused():
            node = Node()
        assert gc.get_freeze_count() == 0
        alive = weakref.ref(node)
        del node
        gc.collect()
        assert alive() is None
    finally:
        gcpolicy.uninstall(saved)
