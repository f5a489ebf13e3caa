"""Issue #6, scenario 7: duplicated and reordered input, then a full replay of the topics.

Duplicates (a producer retry: the same bytes again a few messages later) are
counted, not applied; events of a patient produced out of order (within the
lateness bound) end in the same twin as the oracle's. Then a worker of a new
consumer group with the same key prefix reads every topic from the start:
every record is skipped as already applied, the twins do not change, and no
alert is sent again.
"""

from __future__ import annotations

import pytest

from tests.faults.feed import build_feed
from tests.faults.harness import FaultRun
from tests.faults.oracle import compare_twins

pytestmark = pytest.mark.faults


async def test_duplicates_reordering_and_full_replay(fault_run: FaultRun) -> None:
    run = fault_run
    feed = build_feed(run.settings, patients=200, events_per_patient=12, seed=67,
                      duplicates=80, reorder=60)  # fmt: skip
    run.workers.start("w1")
    producer = run.produce(feed, rate=250)
    verdict = await run.complete(feed, producer)
    assert not verdict.problems, verdict.problems
    assert verdict.figures["events_replayed"] == 0
    run.workers.signal("w1", 15)  # SIGTERM: a clean stop
    run.workers.procs["w1"].wait(timeout=30)

    before_twins = await run.stored_twins()
    before = await run.store.counters()
    oracle = await run.oracle()
    alerts_before = verdict.figures["alerts_delivered"]
    letters_before = verdict.figures["dead_letters_delivered"]

    # A new consumer group with the same key prefix starts from the earliest offsets.
    run.workers.start("replayer", TWIN_CONSUMER_GROUP=f"{run.settings.consumer_group}-replay")
    target = before["consumed"] + oracle.records
    await run.watch.wait("the full replay", lambda: run.watch.total() >= target, deadline_s=120)
    await run.wait_caught_up(oracle)
    after = await run.store.counters()
    replay = await run.verdict(feed, oracle, producer)

    problems = list(replay.problems)
    problems += [f"twin changed by the replay: {d}" for d in
                 compare_twins(await run.stored_twins(), before_twins, run.settings)[:10]]  # fmt: skip
    grown = {k: after.get(k, 0) - before.get(k, 0) for k in set(after) | set(before)}
    grown = {k: n for k, n in grown.items() if n}
    if grown != {"consumed": oracle.records, "replay_skipped": oracle.records}:
        problems.append(f"the replay changed counters other than consumed/replay_skipped: {grown}")
    new_alerts = replay.figures["alerts_delivered"] - alerts_before
    new_letters = replay.figures["dead_letters_delivered"] - letters_before
    if new_alerts or new_letters:
        problems.append(f"the replay sent {new_alerts} alerts and {new_letters} dead letters")
    replay.problems = problems
    run.record(
        replay,
        duplicates_injected=feed.injected["duplicates"],
        reordered_injected=feed.injected["reordered"],
        duplicates_counted=after.get("duplicates", 0),
        replayed_records=grown.get("replay_skipped", 0),
        alerts_sent_by_replay=new_alerts,
    )
    assert not problems, problems
