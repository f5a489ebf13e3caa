"""Redis with the twinstream ACL user (and TLS), against the local services' ACL mode.

A Redis of its own (port 61479, TLS 61480) in a temporary ``TWIN_STATE_DIR``,
started with ``services.up(["redis"], redis_acl=True, redis_tls=True)``. The
store's real operations run as ``twinstream``; everything else is refused.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import AuthenticationError, ConnectionError, NoPermissionError

from stream import services
from stream.api.probes import RedisProbe
from stream.security import REDIS_COMMANDS
from stream.store import BatchCommit, RedisTwinStore, StaleEpochError

pytestmark = pytest.mark.integration

PORT = 61479
TLS_PORT = PORT + 1
PREFIX = "tsec"
PASSWORD = "redis-Test-Password-3"
URL = f"redis://twinstream:{PASSWORD}@127.0.0.1:{PORT}/0"


@pytest.fixture(scope="module")
def acl_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    state = tmp_path_factory.mktemp("tsstate-sec-redis")
    patch = pytest.MonkeyPatch()
    patch.setenv("TWIN_STATE_DIR", str(state))
    patch.setenv("TWIN_REDIS_PASSWORD", PASSWORD)
    patch.setenv("TWIN_KEY_PREFIX", PREFIX)
    patch.delenv("TWIN_REDIS_USER", raising=False)
    patch.delenv("TWIN_REDIS_ADMIN_PASSWORD", raising=False)
    try:
        services.up(["redis"], redis_port=PORT, redis_acl=True, redis_tls=True)
        yield state
    finally:
        services.down(["redis"])
        patch.undo()


@pytest.fixture
async def store(acl_redis: Path) -> AsyncIterator[RedisTwinStore]:
    found = RedisTwinStore(URL, 4, PREFIX)
    yield found
    await found.close()


async def _exercise(store: RedisTwinStore) -> None:
    """Every store operation the worker and the API use."""
    claim = await store.claim_partition(1)
    offsets = {"twin.vitals": claim.offsets.get("twin.vitals", -1) + 1}
    await store.commit_batch(
        BatchCommit(
            1,
            claim.epoch,
            {"p-acl-1": b"twin-bytes"},
            offsets,
            outbox=[b"alert-1", b"alert-2"],
            last_vitals={"p-acl-1": 1000.0},
            counters={"consumed": 1, "applied": 1},
        )
    )
    assert await store.load_twins(1, ["p-acl-1", "p-none"]) == {"p-acl-1": b"twin-bytes"}
    assert await store.get_twin("p-acl-1") == b"twin-bytes"
    assert "p-acl-1" in await store.patient_ids(1)
    assert await store.stale_candidates(1, 2000.0, 10) == ["p-acl-1"]
    await store.ack_outbox(1, claim.epoch, claim.outbox_start + len(claim.outbox) + 2)
    again = await store.claim_partition(1)
    assert again.outbox == [] and again.offsets == offsets
    with pytest.raises(StaleEpochError):  # the fencing script runs under the ACL too
        await store.commit_batch(BatchCommit(1, claim.epoch, {}, {"twin.vitals": 99}))
    assert (await store.counters())["consumed"] >= 1


async def test_twinstream_user_runs_the_store_operations(store: RedisTwinStore) -> None:
    await _exercise(store)
    probe = RedisProbe(URL, PREFIX)  # the API's /readyz and lag probe
    try:
        assert await probe.ready()
        assert await probe.applied_offsets(4)
    finally:
        await probe.close()


async def test_store_operations_over_tls(acl_redis: Path) -> None:
    ca = acl_redis / "tls" / "ca.pem"
    url = f"rediss://twinstream:{PASSWORD}@127.0.0.1:{TLS_PORT}/0?ssl_ca_certs={ca}"
    tls_store = RedisTwinStore(url, 4, PREFIX)
    try:
        await _exercise(tls_store)
    finally:
        await tls_store.close()
    # The URL that services wrote for clients is this one.
    assert f"TWIN_REDIS_URL='{url}'" in services.secure_env_file().read_text()
    # Without the local CA, the server certificate is not trusted.
    untrusted = aioredis.Redis.from_url(f"rediss://twinstream:{PASSWORD}@127.0.0.1:{TLS_PORT}/0")
    with pytest.raises(ConnectionError):
        await untrusted.ping()
    await untrusted.aclose()


async def test_keys_outside_the_prefix_are_refused(store: RedisTwinStore) -> None:
    client = store.redis
    for key in ("other:x", f"{PREFIX}x", "ts:{p0}:epoch"):
        with pytest.raises(NoPermissionError):
            await client.set(key, b"1")
        with pytest.raises(NoPermissionError):
            await client.get(key)
    foreign = RedisTwinStore(URL, 4, "other")
    try:
        with pytest.raises(NoPermissionError):
            await foreign.claim_partition(0)
    finally:
        await foreign.close()


@pytest.mark.parametrize(
    "command",
    [
        ("FLUSHALL",),
        ("FLUSHDB",),
        ("CONFIG", "GET", "dir"),
        ("CONFIG", "SET", "appendonly", "no"),
        ("KEYS", "*"),
        ("SCAN", "0"),
        ("DEL", f"{PREFIX}:{{p1}}:epoch"),
        ("EVAL", "return 1", "0"),
        ("SCRIPT", "FLUSH"),
        ("ACL", "LIST"),
        ("MODULE", "LIST"),
        ("CLIENT", "LIST"),
        ("BGREWRITEAOF",),
        ("MIGRATE", "127.0.0.1", "1", f"{PREFIX}:{{p1}}:epoch", "0", "1000"),
        ("SHUTDOWN",),
        ("MONITOR",),
        ("SUBSCRIBE", "x"),
    ],
)
async def test_dangerous_commands_are_refused(store: RedisTwinStore, command: tuple[str]) -> None:
    with pytest.raises(NoPermissionError):
        await store.redis.execute_command(*command)


async def test_default_user_and_wrong_password_are_refused(acl_redis: Path) -> None:
    no_retry = Retry(NoBackoff(), 0)  # a refusal is final: do not spend seconds retrying it
    anonymous = aioredis.Redis(host="127.0.0.1", port=PORT, retry=no_retry)
    with pytest.raises(AuthenticationError):  # NOAUTH: the default user is off
        await anonymous.ping()
    await anonymous.aclose()
    for user, password in (("default", PASSWORD), ("default", ""), ("twinstream", "wrong")):
        client = aioredis.Redis(
            host="127.0.0.1", port=PORT, username=user, password=password, retry=no_retry
        )
        with pytest.raises(AuthenticationError):
            await client.ping()
        await client.aclose()


def test_no_password_in_clear_on_disk_but_the_client_env(acl_redis: Path) -> None:
    for path in (acl_redis / "config" / "users.acl", acl_redis / "config" / "redis.conf"):
        assert PASSWORD not in path.read_text()
    acl = (acl_redis / "config" / "users.acl").read_text()
    assert acl.startswith("user default off")
    assert f"~{PREFIX}:*" in acl and "-@all" in acl
    assert all(f"+{command}" in acl for command in REDIS_COMMANDS)
    assert services.secure_env_file().stat().st_mode & 0o777 == 0o600
