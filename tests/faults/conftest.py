"""Fixtures of the fault suite: one scenario's isolated topics, prefix and harness."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from stream.kafka import ensure_topics
from stream.settings import Settings
from tests.conftest import Services
from tests.faults.harness import FaultRun

LOCAL = "local services"


@pytest.fixture
def local_services(services: Services) -> Services:
    """The services, when this suite may kill them (it started them from the local scripts)."""
    if services.origin != LOCAL:
        pytest.skip(
            f"Kafka/Redis come from {services.origin}, not from stream.services: this"
            " scenario kills and restarts them, which it only does to local services"
        )
    return services


@pytest.fixture
async def fault_run(
    isolated_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path,
    request: pytest.FixtureRequest,
) -> AsyncIterator[FaultRun]:
    # The stale-data rule runs on batch boundaries (a partition's stream clock),
    # which faults move around: off in fault runs, so the oracle can be exact.
    env = {**isolated_env, "TWIN_STALE_AFTER_MINUTES": "100000"}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    settings = Settings()
    await ensure_topics(settings)
    run = FaultRun(request.node.name.removeprefix("test_"), env, settings, tmp_path)
    run.watch.start()
    try:
        yield run
    finally:
        await run.close()
