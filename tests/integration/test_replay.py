"""PhysioNet replay end to end: ``replay physionet2012 --max`` -> Kafka -> worker -> Redis twins.

Three real stays are replayed into the isolated topics; the worker must build
their twins with the stay's last charted heart rate and one applied event per
VitalsEvent produced. Only vitals are replayed (``--only vitals``): the twin
assertions are about vitals, whatever else the worker learns to consume.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from schemas.decode import Rejection, decode
from schemas.vitals import VitalsEvent
from stream.cli import spawn_worker, stop_process
from stream.feeds.physionet import ReplayOptions, main_replay, replay_messages, stay_paths
from stream.settings import Settings, get_settings
from stream.store import RedisTwinStore
from twin.codec import decode_twin

pytestmark = pytest.mark.integration

DATA = Path(__file__).parents[2] / ".." / "shared" / "data" / "physionet2012"
STAYS = 3


def last_heart_rate(path: Path) -> float:
    rows = [line.split(",") for line in path.read_text().splitlines()[1:]]
    return float([value for _, parameter, value in rows if parameter == "HR"][-1])


async def test_replayed_stays_become_twins(
    isolated_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    if not (DATA / "set-a").is_dir():
        pytest.skip("../shared/data/physionet2012 not present: replay integration test skipped")
    for name, value in isolated_env.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    settings = Settings()
    base = (datetime.now(UTC) - timedelta(hours=48)).replace(second=0, microsecond=0)

    paths = stay_paths(DATA, STAYS)
    options = ReplayOptions(base=base, kinds=frozenset({"vitals"}))
    expected = Counter(m.key.decode() for m in replay_messages(paths, options))
    produced = list(replay_messages(paths, options))
    assert all(not isinstance(decode(VitalsEvent, m.value), Rejection) for m in produced), (
        "the chosen stays should hold only plausible vitals"
    )

    argv = ["physionet2012", "--data", str(DATA), "--limit", str(STAYS), "--max", "--quiet"]
    argv += ["--only", "vitals", "--base", base.isoformat()]
    try:
        assert await asyncio.to_thread(main_replay, argv) == 0
    finally:
        get_settings.cache_clear()

    worker = spawn_worker(env=isolated_env, log_path=str(tmp_path / "worker.log"))
    store = RedisTwinStore(settings.redis_url, settings.partitions, settings.key_prefix)
    twins = {}
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and worker.poll() is None:
            for pid in expected:
                raw = await store.get_twin(pid)
                if raw is not None:
                    twins[pid] = decode_twin(raw)
            if len(twins) == len(expected) and all(
                twins[pid].events_applied >= n for pid, n in expected.items()
            ):
                break
            await asyncio.sleep(0.5)
        await asyncio.sleep(1.0)  # anything beyond the expected count would be a failure too
        for pid in expected:
            raw = await store.get_twin(pid)
            if raw is not None:
                twins[pid] = decode_twin(raw)
    finally:
        await store.close()
        await asyncio.to_thread(stop_process, worker)
    log = (tmp_path / "worker.log").read_text(errors="replace")[-3000:]

    assert set(twins) == set(expected), log
    for path in paths:
        pid = f"physionet-{path.stem}"
        twin = twins[pid]
        assert twin.events_applied == expected[pid], log
        assert twin.latest["heart_rate"].value == last_heart_rate(path)
        last = max(orjson.loads(m.value)["observed_at"] for m in produced if m.key == pid.encode())
        assert twin.last_vitals_at == datetime.fromisoformat(last).timestamp()
