"""The updater with in-memory ports: exactly-once bookkeeping without a broker."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import orjson
import pytest

from stream.ports import Envelope
from stream.settings import Settings
from stream.store import BatchCommit, MemoryTwinStore
from stream.updater import TwinUpdater
from twin.codec import decode_twin

pytestmark = pytest.mark.agents

T0 = 1_800_000_000.0


class ListSink:
    """A real in-memory sink: keeps what was sent, per topic."""

    def __init__(self) -> None:
        self.sent: dict[str, list[tuple[bytes | None, bytes]]] = {}

    async def send(self, topic: str, items: Sequence[tuple[bytes | None, bytes]]) -> None:
        self.sent.setdefault(topic, []).extend(items)


def vitals(pid: str, seq: int, **values: object) -> bytes:
    from datetime import UTC, datetime

    at = datetime.fromtimestamp(T0 + seq * 60, tz=UTC).isoformat()
    return orjson.dumps(
        {"event_id": f"{pid}:{seq}", "patient_id": pid, "observed_at": at, **values}
    )


def env(offset: int, value: bytes, partition: int = 0, topic: str = "twin.vitals") -> Envelope:
    try:
        key = orjson.loads(value)["patient_id"].encode()
    except (orjson.JSONDecodeError, KeyError, TypeError):
        key = b"p-x"
    return Envelope(topic, partition, offset, key, value)


@pytest.fixture
def parts() -> tuple[Settings, MemoryTwinStore, ListSink]:
    return Settings(), MemoryTwinStore(8), ListSink()


async def test_applies_alerts_and_dead_letters(
    parts: tuple[Settings, MemoryTwinStore, ListSink],
) -> None:
    settings, store, sink = parts
    up = TwinUpdater(settings, store, sink)
    await up.process(
        [
            env(0, vitals("p1", 0, heart_rate=80, spo2=97)),
            env(1, vitals("p1", 1, spo2=90)),  # SpO2 <= 91 scores 3
            env(2, b"{broken"),
            env(3, vitals("p2", 1, heart_rate=999)),  # implausible
        ]
    )
    twin = decode_twin(await store.get_twin("p1") or b"")
    assert twin.latest["spo2"].value == 90
    assert twin.latest["heart_rate"].value == 80
    alerts = [orjson.loads(v) for _, v in sink.sent["twin.alerts"]]
    assert [(a["status"], a["rule"]) for a in alerts] == [("open", "news2")]
    assert alerts[0]["details"]["band"] == "low-medium"
    assert alerts[0]["details"]["parameters_scoring_3"] == ["spo2"]
    dead = [orjson.loads(v) for _, v in sink.sent["twin.deadletter"]]
    assert [(d["reason"], d["offset"]) for d in dead] == [("malformed_json", 2), ("implausible", 3)]
    assert "999" not in dead[1]["error"]
    c = up.counters
    assert (c.consumed, c.applied, sum(c.dead_lettered.values())) == (4, 2, 2)
    assert c.balanced()
    # The same accounting is committed to the store with the twins.
    stored = await store.counters()
    assert stored == {
        "consumed": 4,
        "applied": 2,
        "dead.malformed_json": 1,
        "dead.implausible": 1,
        "alerts": 1,
    }


async def test_replay_changes_nothing(parts: tuple[Settings, MemoryTwinStore, ListSink]) -> None:
    settings, store, sink = parts
    batch = [env(i, vitals("p1", i * 20, spo2=90 if i == 3 else 97)) for i in range(6)]
    first = TwinUpdater(settings, store, sink)
    await first.process(batch)
    before = await store.get_twin("p1")
    # A restarted worker sees the same records again: all are skipped.
    second = TwinUpdater(settings, store, sink)
    await second.process(batch)
    assert await store.get_twin("p1") == before
    assert second.counters.replay_skipped == 6 and second.counters.applied == 0
    # Opened at reading 3, resolved at reading 4 (20 min clear > 15 min hold); not re-sent.
    assert [orjson.loads(v)["status"] for _, v in sink.sent["twin.alerts"]] == ["open", "resolved"]


async def test_stale_worker_is_fenced(parts: tuple[Settings, MemoryTwinStore, ListSink]) -> None:
    settings, store, sink = parts
    old = TwinUpdater(settings, store, sink)
    await old.process([env(0, vitals("p1", 0, heart_rate=70))])
    new = TwinUpdater(settings, store, sink)  # takes the partition over
    await new.process([env(1, vitals("p1", 1, heart_rate=71))])
    await old.process([env(2, vitals("p1", 2, heart_rate=140))])  # wakes up late
    assert decode_twin(await store.get_twin("p1") or b"").latest["heart_rate"].value == 71
    assert old.counters.handed_over == 1 and old.counters.balanced()


async def test_latest_by_event_time_not_arrival(
    parts: tuple[Settings, MemoryTwinStore, ListSink],
) -> None:
    settings, store, sink = parts
    up = TwinUpdater(settings, store, sink)
    await up.process(
        [env(0, vitals("p1", 5, heart_rate=100)), env(1, vitals("p1", 2, heart_rate=60))]
    )
    twin = decode_twin(await store.get_twin("p1") or b"")
    assert twin.latest["heart_rate"].value == 100
    assert twin.events_applied == 2


def lab(pid: str, seq: int, analyte: str, value: float, unit: str) -> bytes:
    from datetime import UTC, datetime

    at = datetime.fromtimestamp(T0 + seq * 60, tz=UTC).isoformat()
    return orjson.dumps(
        {"event_id": f"{pid}:lab:{seq}", "patient_id": pid, "observed_at": at,
         "analyte": analyte, "value": value, "unit": unit}
    )  # fmt: skip


async def test_labs_duplicates_and_keys(parts: tuple[Settings, MemoryTwinStore, ListSink]) -> None:
    settings, store, sink = parts
    up = TwinUpdater(settings, store, sink)
    k_high = lab("p1", 1, "potassium", 6.9, "mmol/L")
    await up.process(
        [
            env(0, k_high, topic="twin.labs"),
            env(1, k_high, topic="twin.labs"),  # same event id again: a duplicate
            Envelope("twin.labs", 0, 2, b"someone-else", lab("p1", 2, "sodium", 140, "mmol/L")),
            env(3, lab("p1", 3, "glucose", 3.0, "furlongs"), topic="twin.labs"),
        ]
    )
    alerts = [orjson.loads(v) for _, v in sink.sent["twin.alerts"]]
    assert [(a["rule"], a["status"], a["severity"]) for a in alerts] == [
        ("lab.critical.potassium", "open", "high")
    ]
    assert alerts[0]["details"]["direction"] == "high"
    dead = [orjson.loads(v) for _, v in sink.sent["twin.deadletter"]]
    assert [d["reason"] for d in dead] == ["invalid", "unknown_unit"]
    assert "patient_id" in dead[0]["error"]
    c = up.counters
    assert (c.applied, c.duplicates, sum(c.dead_lettered.values())) == (1, 1, 2)
    assert c.balanced()


async def test_stale_data_alert_by_stream_event_time(
    parts: tuple[Settings, MemoryTwinStore, ListSink],
) -> None:
    settings, store, sink = parts
    settings = Settings(stale_after_minutes=120, stale_scan_seconds=60)
    up = TwinUpdater(settings, store, sink)
    await up.process([env(0, vitals("quiet", 0, heart_rate=70))])
    # Another patient keeps sending for 3 h of event time; "quiet" sends nothing.
    await up.process([env(i, vitals("busy", i * 10, heart_rate=72)) for i in range(1, 20)])
    alerts = [orjson.loads(v) for _, v in sink.sent.get("twin.alerts", [])]
    stale = [a for a in alerts if a["rule"] == "data.stale"]
    assert [(a["patient_id"], a["status"]) for a in stale] == [("quiet", "open")]
    # Vitals come back: the stale alert resolves at once.
    await up.process([env(20, vitals("quiet", 200, heart_rate=71))])
    alerts = [orjson.loads(v) for _, v in sink.sent["twin.alerts"]]
    assert [a["status"] for a in alerts if a["rule"] == "data.stale"] == ["open", "resolved"]


async def test_fhir_bundle_applies_to_the_twin(
    parts: tuple[Settings, MemoryTwinStore, ListSink],
) -> None:
    settings, store, sink = parts
    obs = {
        "resourceType": "Observation", "id": "hr-1", "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "subject": {"reference": "Patient/f1"},
        "effectiveDateTime": "2026-11-23T10:15:00Z",
        "valueQuantity": {"value": 132, "unit": "/min", "code": "/min"},
    }  # fmt: skip
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": obs}]}
    up = TwinUpdater(settings, store, sink)
    await up.process([Envelope("twin.fhir", 0, 0, b"f1", orjson.dumps(bundle))])
    twin = decode_twin(await store.get_twin("f1") or b"")
    assert twin.latest["heart_rate"].value == 132
    assert up.counters.applied == 1


async def test_pseudonymisation_at_ingest(
    parts: tuple[Settings, MemoryTwinStore, ListSink],
) -> None:
    from stream.handlers import pseudonymise

    _, store, sink = parts
    settings = Settings(pseudonym_key="test-key-not-secret")  # type: ignore[arg-type]
    up = TwinUpdater(settings, store, sink)
    await up.process([env(0, vitals("real-id-42", 0, spo2=85))])
    pseudo = pseudonymise("real-id-42", b"test-key-not-secret")
    assert await store.get_twin("real-id-42") is None
    twin = decode_twin(await store.get_twin(pseudo) or b"")
    assert twin.patient_id == pseudo
    sent = b"".join(v for _, v in sink.sent["twin.alerts"])
    assert b"real-id-42" not in sent and pseudo.encode() in sent


async def test_learned_state_risk_and_outcomes(
    parts: tuple[Settings, MemoryTwinStore, ListSink],
) -> None:
    settings, store, sink = parts
    up = TwinUpdater(settings, store, sink)
    recs = [env(i, vitals("p9", i * 20, heart_rate=70 + i % 3, spo2=97, respiratory_rate=15,
                          systolic_bp=120, temperature_c=36.8)) for i in range(20)]  # fmt: skip
    await up.process(recs)
    twin = decode_twin(await store.get_twin("p9") or b"")
    assert twin.learned and twin.risk is not None and twin.anomaly is not None
    assert 0.0 <= twin.risk <= 1.0
    from datetime import UTC, datetime

    outcome = {"patient_id": "p9", "outcome": "in_hospital_death", "value": 1,
               "observed_at": datetime.fromtimestamp(T0 + 500 * 60, tz=UTC).isoformat()}  # fmt: skip
    await up.process([Envelope("twin.outcomes", 0, 0, b"p9", orjson.dumps(outcome))])
    twin = decode_twin(await store.get_twin("p9") or b"")
    assert twin.outcomes == {"in_hospital_death": 1.0}
    assert up.risk is not None and up.risk.n_learned >= 1
    await up.checkpoint_models(force=True)
    assert await store.get_blob("risk") and await store.get_blob("anomaly", 0)


async def test_hot_twins_are_bounded(parts: tuple[Settings, MemoryTwinStore, ListSink]) -> None:
    _, store, sink = parts
    settings = Settings(hot_twins=8 * 3)  # three per partition
    up = TwinUpdater(settings, store, sink)
    await up.process([env(i, vitals(f"h{i}", i, heart_rate=70)) for i in range(10)])
    assert len(up._parts[0].twins) == 3
    # An evicted twin is reloaded from the store on its next event, state intact.
    await up.process([env(10, vitals("h0", 11, heart_rate=90))])
    twin = decode_twin(await store.get_twin("h0") or b"")
    assert twin.events_applied == 2 and twin.latest["heart_rate"].value == 90


async def test_a_cycle_over_more_patients_than_fit_still_finds_some_twins_hot() -> None:
    # Three twins fit per partition; four patients report in turn, one event per
    # batch. Least-recently-used eviction would drop each twin just before its
    # next event and load every one from the store.
    store = MemoryTwinStore(8)
    up = TwinUpdater(Settings(hot_twins=8 * 3), store, ListSink())
    loaded: list[str] = []
    load = store.load_twins

    async def counting(partition: int, pids: Sequence[str]) -> dict[str, bytes]:
        loaded.extend(pids)
        return await load(partition, pids)

    store.load_twins = counting  # type: ignore[method-assign]
    rounds = 30
    for i in range(4 * rounds):
        pid = f"c{i % 4}"
        await up.process([env(i, vitals(pid, i, heart_rate=70 + i % 7))])
        assert len(up._parts[0].twins) <= 3
    assert len(loaded) < 0.6 * 4 * rounds  # with LRU eviction: 120 of 120
    for n in range(4):  # and nothing was lost on the way out and back
        twin = decode_twin(await store.get_twin(f"c{n}") or b"")
        assert twin.events_applied == rounds


async def test_a_backlog_of_known_patients_goes_in_large_batches_new_ones_in_small() -> None:
    store = MemoryTwinStore(8)
    settings = Settings(hot_twins=8 * 100, pseudonym_key="k-not-secret")  # type: ignore[arg-type]
    up = TwinUpdater(settings, store, ListSink())
    commits: list[int] = []
    commit = store.commit_batch

    async def counting(batch: BatchCommit) -> int:
        commits.append(len(batch.twins))
        return await commit(batch)

    store.commit_batch = counting  # type: ignore[method-assign]

    async def backlog(records: list[Envelope], most_new: int) -> list[int]:
        sizes = []
        for chunk in up.chunks(records, most_new):
            sizes.append(len(chunk))
            await up.process(chunk)
            assert len(up._parts[0].twins) <= 100 + most_new  # hot ones + a batch's new
        return sizes

    # 30 new patients, 5 at most per batch: batches cut at every 5 new patients.
    first = [env(i, vitals(f"b{i}", 0, heart_rate=70)) for i in range(30)]
    assert await backlog(first, 5) == [5] * 6
    # Then 10 events each for the same patients (ids pseudonymised, keys are not):
    # all of their twins are in memory, so one batch, one commit of each twin.
    commits.clear()
    again = [env(30 + i, vitals(f"b{i % 30}", 1 + i // 30, heart_rate=72)) for i in range(300)]
    assert await backlog(again, 5) == [300]
    assert commits == [30]
    twin = decode_twin(await store.get_twin(up._parts[0].twins.popitem()[0]) or b"")
    assert twin.events_applied == 11


class GatedSink(ListSink):
    """A sink whose sends wait until the test opens the gate (a slow broker)."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.started = 0

    async def send(self, topic: str, items: Sequence[tuple[bytes | None, bytes]]) -> None:
        self.started += 1
        await self.gate.wait()
        await super().send(topic, items)


async def test_outputs_are_sent_in_the_background_a_few_batches_in_flight() -> None:
    from stream.updater import SENDS_IN_FLIGHT

    settings, store, sink = Settings(alert_hold_minutes=0), MemoryTwinStore(8), GatedSink()
    up = TwinUpdater(settings, store, sink)
    # Alternately open and resolve (20 min apart, past the 15 min cooldown).
    batches = [
        [env(i, vitals("p1", 20 * i, spo2=90 if i % 2 == 0 else 97))]
        for i in range(SENDS_IN_FLIGHT + 1)
    ]
    for batch in batches[:SENDS_IN_FLIGHT]:
        await up.process(batch)  # committed, outputs not yet sent: done anyway
    assert len(store._part(0).outbox) == SENDS_IN_FLIGHT and "twin.alerts" not in sink.sent
    assert await up.drain(wait_s=0.05) is False
    # One more batch of the partition commits, then waits for the oldest send.
    last = asyncio.ensure_future(up.process(batches[-1]))
    await asyncio.sleep(0.05)
    assert not last.done() and up.counters.consumed == SENDS_IN_FLIGHT + 1
    sink.gate.set()
    await last
    assert await up.drain(wait_s=5) is True
    statuses = [orjson.loads(v)["status"] for _, v in sink.sent["twin.alerts"]]
    assert statuses == ["open", "resolved"] * (SENDS_IN_FLIGHT // 2) + ["open"]  # commit order
    assert store._part(0).outbox == []  # acknowledged once sent


class FirstSendGated(GatedSink):
    """Only the first send waits for the gate: later batches' sends finish first."""

    async def send(self, topic: str, items: Sequence[tuple[bytes | None, bytes]]) -> None:
        self.started += 1
        if self.started == 1:
            await self.gate.wait()
        await ListSink.send(self, topic, items)


async def test_a_later_send_finishing_first_does_not_ack_an_earlier_batch() -> None:
    settings, store, sink = Settings(alert_hold_minutes=0), MemoryTwinStore(8), FirstSendGated()
    up = TwinUpdater(settings, store, sink)
    await up.process([env(0, vitals("p1", 0, spo2=90))])  # open: its send waits
    await up.process([env(1, vitals("p1", 20, spo2=97))])  # resolved: sent at once
    await asyncio.sleep(0.05)
    assert [orjson.loads(v)["status"] for _, v in sink.sent["twin.alerts"]] == ["resolved"]
    # The open alert is not sent yet, so it stays in the stored outbox: a crash now
    # and the next owner sends it. The later batch's ack waits for it.
    stored = [orjson.loads(o[1:].partition(b"\n")[2])["status"] for o in store._part(0).outbox]
    assert stored == ["open", "resolved"]
    sink.gate.set()
    assert await up.drain(wait_s=5) is True
    assert store._part(0).outbox == []


async def test_a_send_left_in_flight_is_resent_by_the_next_owner() -> None:
    settings, store, sink = Settings(), MemoryTwinStore(8), GatedSink()
    old = TwinUpdater(settings, store, sink)
    await old.process([env(0, vitals("p1", 0, spo2=90))])
    # The worker dies with the send in flight; a new owner claims the partition.
    new = TwinUpdater(settings, store, ListSink())
    await new.on_assigned([0])
    assert [orjson.loads(v)["status"] for _, v in new.sink.sent["twin.alerts"]] == ["open"]  # type: ignore[attr-defined]
    assert store._part(0).outbox == []
    sink.gate.set()  # the old send completes late: a duplicate with the same alert_id,
    assert await old.drain(wait_s=5)
    assert store._part(0).outbox == []  # and its ack under the old epoch trims nothing


async def test_a_twin_this_worker_cannot_read_blocks_nothing(
    parts: tuple[Settings, MemoryTwinStore, ListSink],
) -> None:
    import msgpack

    settings, store, sink = parts
    old = msgpack.packb({"v": 3, "id": "p-old"})  # written by a retired codec version
    claim = await store.claim_partition(0)
    # Silent for 10 h: the stale-data scan reads it too.
    await store.commit_batch(
        BatchCommit(
            0, claim.epoch, {"p-old": old}, {"twin.vitals": 0}, last_vitals={"p-old": T0 - 36_000}
        )
    )
    up = TwinUpdater(settings, store, sink)
    await up.process(
        [
            env(1, vitals("p-old", 1, heart_rate=80)),
            env(2, vitals("p-new", 1, heart_rate=81)),
        ]
    )
    await up.drain()
    dead = [orjson.loads(v) for _, v in sink.sent["twin.deadletter"]]
    assert [(d["reason"], d["offset"]) for d in dead] == [("twin_unreadable", 1)]
    assert "version 3" in dead[0]["error"]
    assert await store.get_twin("p-old") == old  # left for a worker that can read it
    assert decode_twin(await store.get_twin("p-new") or b"").latest["heart_rate"].value == 81
    c = up.counters
    assert (c.applied, c.dead_lettered["twin_unreadable"]) == (1, 1) and c.balanced()
    assert "p-old" not in store._part(0).last_vitals  # the scan will not read it again
