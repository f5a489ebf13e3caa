"""Start, stop and inspect the local Kafka broker and Redis server, no Docker needed.

Kafka runs as a single-node KRaft broker+controller from a pinned jar set that
Maven resolves once into ``$TWIN_CACHE_DIR/kafka-<version>/libs``. Redis is the
distribution's ``redis-server`` with our own generated config. Both are spawned
detached (their own session) and tracked by pid files, so the CLI can exit and
a later ``down`` finds them again.

Everything a run writes lives under ``$TWIN_STATE_DIR``::

    config/   server.properties, redis.conf (regenerated at each start)
    data/     kafka/ (KRaft log dirs), redis/ (AOF + RDB)
    logs/     kafka/server.log, kafka.out, redis.log
    run/      kafka.pid, redis.pid, services.lock
    tls/      local CA and server certificate (secure mode, :mod:`stream.local_tls`)
    secure.env  client settings of the secure mode (0600)

Environment: ``TWIN_LOCAL_KAFKA_PORT`` (9092; the controller uses port + 1),
``TWIN_LOCAL_REDIS_PORT`` (6379), ``TWIN_STATE_DIR``
(``~/.local/state/twinstream``), ``TWIN_CACHE_DIR`` (``~/.cache/twinstream``).

Secure mode (:mod:`stream.local_secure`), off by default:
``--secure`` / ``TWIN_LOCAL_KAFKA_SECURE=1`` adds a SASL_SSL (SCRAM-SHA-512)
listener on kafka port + 2; ``--redis-acl`` / ``TWIN_LOCAL_REDIS_ACL=1`` turns
Redis' default user off and adds the twinstream ACL user; ``--redis-tls`` /
``TWIN_LOCAL_REDIS_TLS=1`` adds a TLS port on redis port + 1.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import concurrent.futures
import contextlib
import fcntl
import functools
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from stream import local_secure
from stream.local_tls import LocalTls, TlsMaterialError, ensure_local_tls

__all__ = [
    "COMPONENTS",
    "KAFKA_VERSION",
    "ServiceError",
    "ServicePorts",
    "ServiceStatus",
    "cache_dir",
    "down",
    "ensure_kafka_jars",
    "ensure_redis_installed",
    "kafka_down",
    "kafka_up",
    "kill_service",
    "main_services",
    "pid_file",
    "pid_of",
    "redis_down",
    "redis_up",
    "restart",
    "secure_env_file",
    "state_dir",
    "status",
    "up",
]

logger = logging.getLogger(__name__)

KAFKA_VERSION = "4.1.1"
COMPONENTS: tuple[str, ...] = ("kafka", "redis")
DEFAULT_KAFKA_PORT = 9092
DEFAULT_REDIS_PORT = 6379
HOST = "127.0.0.1"
KAFKA_JVM_OPTS = (
    # Sized for a 2-core dev machine that also runs Faust workers.
    "-Xms256m",
    "-Xmx768m",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:+ExitOnOutOfMemoryError",
    "-Djava.awt.headless=true",
)
# Substrings of /proc/<pid>/cmdline that prove a pid is still our process.
_CMDLINE_MARKERS = {"kafka": "kafka.Kafka", "redis": "redis-server"}
# Popen handles of processes this interpreter spawned, so they are reaped.
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


class ServiceError(Exception):
    """A local service could not be started, stopped or found.

    The message says what to do next; ``twinstream services status`` and the
    logs under ``$TWIN_STATE_DIR/logs`` tell the rest.
    """


@dataclass(frozen=True)
class ServicePorts:
    """TCP ports of the local services; the Kafka controller uses ``kafka + 1``."""

    kafka: int = DEFAULT_KAFKA_PORT
    redis: int = DEFAULT_REDIS_PORT

    @property
    def controller(self) -> int:
        return self.kafka + 1

    @property
    def secure_kafka(self) -> int:
        """The SASL_SSL listener of the secure mode."""
        return self.kafka + 2

    @property
    def redis_tls(self) -> int:
        """Redis' TLS port when ``--redis-tls`` is on."""
        return self.redis + 1

    @classmethod
    def resolve(cls, kafka: int | None = None, redis: int | None = None) -> ServicePorts:
        """Arguments win over ``TWIN_LOCAL_*_PORT``, which win over the defaults.

        >>> ServicePorts.resolve(kafka=19192, redis=16479).controller
        19193
        """
        ports = cls(
            kafka=kafka or _env_port("TWIN_LOCAL_KAFKA_PORT", DEFAULT_KAFKA_PORT),
            redis=redis or _env_port("TWIN_LOCAL_REDIS_PORT", DEFAULT_REDIS_PORT),
        )
        for port in (ports.kafka, ports.controller, ports.redis):
            if not 1024 <= port <= 65535:
                raise ServiceError(f"port {port} is outside 1024-65535; choose another port")
        if ports.redis in (ports.kafka, ports.controller):
            raise ServiceError(
                f"Redis port {ports.redis} collides with Kafka {ports.kafka}/{ports.controller}"
                " (the controller takes kafka port + 1); choose another port"
            )
        return ports


@dataclass(frozen=True)
class ServiceStatus:
    """One line of ``status``: is the service up and answering, and where."""

    name: str
    running: bool
    pid: int | None
    address: str | None
    detail: str


def _env_port(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ServiceError(f"{name}={raw!r} is not a port number; unset it or fix it") from None


def state_dir() -> Path:
    """Where data, logs, pid files and generated configs live (``TWIN_STATE_DIR``)."""
    raw = os.environ.get("TWIN_STATE_DIR") or "~/.local/state/twinstream"
    return Path(raw).expanduser().resolve()


def secure_env_file() -> Path:
    """Client settings of the secure mode (``set -a; . $TWIN_STATE_DIR/secure.env``)."""
    return state_dir() / "secure.env"


def _local_tls() -> LocalTls:
    try:
        return ensure_local_tls(state_dir() / "tls")
    except TlsMaterialError as exc:
        raise ServiceError(str(exc)) from exc


def cache_dir() -> Path:
    """Where the resolved Kafka jars are kept across state dirs (``TWIN_CACHE_DIR``)."""
    return Path(os.environ.get("TWIN_CACHE_DIR") or "~/.cache/twinstream").expanduser().resolve()


def pid_file(name: str) -> Path:
    return state_dir() / "run" / f"{_check_name(name)}.pid"


def _check_name(name: str) -> str:
    if name not in COMPONENTS:
        raise ServiceError(f"unknown service {name!r}; expected one of {', '.join(COMPONENTS)}")
    return name


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """Serialise concurrent ``up``/``down`` (and jar downloads) across processes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _tail(logs: Iterable[Path], lines: int = 25) -> str:
    """The last lines of each non-empty log, headed by its path."""
    parts = []
    for path in logs:
        with contextlib.suppress(OSError):
            if text := path.read_text(errors="replace").splitlines()[-lines:]:
                parts.append(f"--- {path}\n" + "\n".join(text))
    return "\n".join(parts) or "(the logs are empty)"


def _run(
    cmd: list[str],
    what: str,
    hint: str,
    env: dict[str, str] | None = None,
    redact: tuple[str, ...] = (),
) -> None:
    """Run a setup command; on failure raise with its output tail and a hint.

    Strings in ``redact`` (passwords on a command line) never reach the log or the error.
    """

    def hide(text: str) -> str:
        for secret in redact:
            text = text.replace(secret, "***")
        return text

    logger.info("%s: %s", what, hide(" ".join(cmd)))
    result = subprocess.run(  # noqa: S603 - fixed argv, executables resolved by which()
        cmd, capture_output=True, text=True, check=False, env=env
    )
    if result.returncode != 0:
        output = hide("\n".join((result.stdout + result.stderr).splitlines()[-25:]))
        raise ServiceError(f"{what} failed (exit {result.returncode}); {hint}\n{output}")


# --- installation -------------------------------------------------------------------------


def ensure_kafka_jars() -> Path:
    """Return the folder of Kafka jars, resolving them with Maven on first use.

    Maven runs only when ``$TWIN_CACHE_DIR/kafka-<version>/libs`` is missing or
    incomplete; it resolves into a temporary folder renamed into place, so an
    interrupted download never leaves a half-filled ``libs``.
    """
    root = cache_dir() / f"kafka-{KAFKA_VERSION}"
    libs = root / "libs"
    if _jars_complete(libs):
        return libs
    with _file_lock(cache_dir() / f"kafka-{KAFKA_VERSION}.lock"):
        if _jars_complete(libs):
            return libs
        mvn = shutil.which("mvn")
        if mvn is None:
            raise ServiceError(
                f"Maven is needed once to fetch Kafka {KAFKA_VERSION}: apt-get install maven,"
                f" or copy the broker jars into {libs}"
            )
        root.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=root, prefix=".resolve-") as tmp:
            pom = Path(tmp) / "pom.xml"
            pom.write_bytes(resources.files("stream").joinpath("kafka/pom.xml").read_bytes())
            staged = Path(tmp) / "libs"
            started = time.monotonic()
            resolve = [mvn, "-q", "-B", "-f", str(pom), "dependency:copy-dependencies"]
            resolve += [f"-DoutputDirectory={staged}", "-DincludeScope=runtime"]
            _run(
                resolve,
                "resolving Kafka jars with Maven",
                "check access to Maven Central (proxy settings in ~/.m2/settings.xml)",
            )
            if not _jars_complete(staged):
                raise ServiceError(f"Maven finished but {staged} lacks the Kafka jars; see pom.xml")
            if libs.exists():
                shutil.rmtree(libs)
            staged.rename(libs)
        logger.info(
            "Kafka %s jars ready in %s (%.1fs)", KAFKA_VERSION, libs, time.monotonic() - started
        )
    return libs


def _jars_complete(libs: Path) -> bool:
    wanted = (f"kafka_2.13-{KAFKA_VERSION}.jar", f"kafka-clients-{KAFKA_VERSION}.jar")
    return all((libs / jar).is_file() for jar in wanted) and any(libs.glob("log4j-core-*.jar"))


def ensure_redis_installed() -> str:
    """Return the path of ``redis-server``, installing Debian's package if needed.

    The package's own service is kept from starting (``policy-rc.d`` answering
    101) and stopped if it started anyway, so only our Redis runs.
    """
    found = shutil.which("redis-server")
    if found:
        return found
    apt = shutil.which("apt-get")
    if apt is None or os.geteuid() != 0:
        raise ServiceError(
            "redis-server is not installed: run `sudo apt-get install -y redis-server`"
            " (or put redis-server on PATH) and retry"
        )
    policy = Path("/usr/sbin/policy-rc.d")
    created_policy = not policy.exists()
    if created_policy:
        policy.write_text("#!/bin/sh\n# twinstream: keep apt from starting services\nexit 101\n")
        policy.chmod(0o755)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    hint = "install redis-server by hand (apt-get install -y redis-server) and retry"
    try:
        _run([apt, "update"], "apt-get update", hint, env=env)
        _run([apt, "install", "-y", "redis-server"], "installing redis-server", hint, env=env)
    finally:
        if created_policy:
            policy.unlink(missing_ok=True)
    _stop_system_redis()
    found = shutil.which("redis-server") or "/usr/bin/redis-server"
    if not Path(found).is_file():
        raise ServiceError(f"apt installed redis-server but {found} is missing; {hint}")
    return found


def _stop_system_redis() -> None:
    with contextlib.suppress(OSError, ValueError):
        pid = int(Path("/run/redis/redis-server.pid").read_text().strip())
        logger.warning("stopping the system redis-server (pid %d) that apt started", pid)
        _terminate(pid, timeout=15.0)


# --- processes ----------------------------------------------------------------------------


def _alive(pid: int) -> bool:
    child = _CHILDREN.get(pid)
    if child is not None:
        if child.poll() is None:
            return True
        del _CHILDREN[pid]
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    # A zombie has exited; only its parent's wait() is missing.
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def _is_ours(name: str, pid: int) -> bool:
    """Alive and still our program, so a recycled pid is never signalled."""
    if not _alive(pid):
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:
        return False
    return _CMDLINE_MARKERS[name] in cmdline.decode(errors="replace")


def pid_of(name: str) -> int | None:
    """Pid of our running ``kafka`` or ``redis``; a stale pid file is removed."""
    path = pid_file(name)
    try:
        pid = int(path.read_text().strip())
    except (OSError, ValueError):
        return None
    if _is_ours(name, pid):
        return pid
    logger.warning("removing stale %s pid file (pid %d is not running)", name, pid)
    path.unlink(missing_ok=True)
    return None


def kill_service(name: str, sig: int = signal.SIGKILL) -> int:
    """Send ``sig`` to a running service (fault injection); return its pid."""
    pid = pid_of(name)
    if pid is None:
        raise ServiceError(f"{name} is not running; start it with `twinstream services up`")
    os.kill(pid, sig)
    return pid


def _terminate(pid: int, timeout: float) -> None:
    """SIGTERM, wait up to ``timeout``, then SIGKILL; SIGCONT wakes a stopped process."""
    for sig in (signal.SIGTERM, signal.SIGCONT):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
    if _wait_for(lambda: not _alive(pid), timeout):
        return
    logger.warning("pid %d ignored SIGTERM for %.0fs; sending SIGKILL", pid, timeout)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    if not _wait_for(lambda: not _alive(pid), 10.0):
        raise ServiceError(f"pid {pid} survived SIGKILL; inspect it with `ps -o stat -p {pid}`")


def _wait_for(check: Callable[[], bool], timeout: float, interval: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def _spawn(name: str, cmd: list[str], out: Path) -> int:
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("ab") as sink:
        proc = subprocess.Popen(  # noqa: S603 - fixed argv, executables resolved by which()
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # survives the CLI and its terminal's Ctrl-C
            cwd=state_dir(),
        )
    _CHILDREN[proc.pid] = proc
    path = pid_file(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{proc.pid}\n")
    logger.info("started %s (pid %d)", name, proc.pid)
    return proc.pid


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def _require_free(name: str, *ports: int, grace: float = 2.0) -> None:
    for port in ports:
        # A process killed a moment ago may still hold its sockets: the kernel closes
        # them after the reap, so allow a short grace before calling the port taken.
        if not _wait_for(functools.partial(_port_free, port), grace, interval=0.1):
            raise ServiceError(
                f"cannot start {name}: port {port} is already in use by another process"
                f" (find it with `ss -ltnp 'sport = :{port}'`); stop it or choose another"
                f" port with --{name}-port / TWIN_LOCAL_{name.upper()}_PORT"
            )


# --- probes -------------------------------------------------------------------------------


def _kafka_answers(port: int, timeout: float = 3.0) -> bool:
    """True when the broker returns metadata listing at least one broker."""
    # Only pay for aiokafka once the port accepts; it logs every refused connect.
    try:
        socket.create_connection((HOST, port), timeout=timeout).close()
    except OSError:
        return False
    # A thread of its own, so this also works when called from inside a running loop.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, _kafka_metadata(port, timeout)).result()


async def _kafka_metadata(port: int, request_timeout_s: float) -> bool:
    from aiokafka import AIOKafkaClient
    from aiokafka.errors import KafkaError

    client = AIOKafkaClient(
        bootstrap_servers=f"{HOST}:{port}", request_timeout_ms=int(request_timeout_s * 1000)
    )
    try:
        await client.bootstrap()
        return bool(client.cluster.brokers())
    except (TimeoutError, KafkaError, OSError):
        return False
    finally:
        await client.close()


def _redis_answers(port: int, timeout: float = 2.0) -> bool:
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    # One attempt, no retries: a stopped or hung server must fail fast.
    client = redis.Redis(
        host=HOST,
        port=port,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
    )
    try:
        return bool(client.ping())
    except (redis.AuthenticationError, redis.exceptions.NoPermissionError):
        return True  # the ACL mode refuses anonymous clients: refusing is answering
    except redis.RedisError:
        return False
    finally:
        client.close()


def _answers(name: str, port: int) -> bool:
    return _kafka_answers(port) if name == "kafka" else _redis_answers(port)


STARTUP_CAP_S = 900.0
"""Longest a start-up may take while the service keeps writing its log (see _wait_ready)."""


def _log_sizes(logs: tuple[Path, ...]) -> tuple[int, ...]:
    sizes = []
    for log in logs:
        try:
            sizes.append(log.stat().st_size)
        except OSError:
            sizes.append(-1)
    return tuple(sizes)


def _wait_ready(name: str, pid: int, port: int, timeout: float, logs: tuple[Path, ...]) -> None:
    """Wait until ``name`` answers; fail after ``timeout`` seconds without an answer
    or a new log line, or after :data:`STARTUP_CAP_S` in all.

    A broker restarted after a crash first recovers every partition's log: with
    the ~10,000 partitions a test session leaves, 58 s on this machine when idle
    and over 90 s under load, all of it logged (``Log loaded for partition``).
    """
    began = time.monotonic()
    sizes = _log_sizes(logs)
    deadline = began + timeout
    while not _wait_for(
        lambda: not _alive(pid) or _answers(name, port), min(5.0, timeout), interval=0.5
    ):
        now = time.monotonic()
        latest = _log_sizes(logs)
        if latest != sizes:  # still starting up, and saying so
            sizes = latest
            deadline = min(now + timeout, began + STARTUP_CAP_S)
        if now >= deadline:
            raise ServiceError(
                f"{name} (pid {pid}) did not answer on {HOST}:{port} after {now - began:.0f}s"
                f" ({timeout:.0f}s without a new log line, or {STARTUP_CAP_S:.0f}s in all);"
                f" run `twinstream services down` and read the logs:\n{_tail(logs)}"
            )
    if _alive(pid):
        return
    pid_file(name).unlink(missing_ok=True)
    raise ServiceError(f"{name} exited during start-up; fix the cause in:\n{_tail(logs)}")


# --- kafka --------------------------------------------------------------------------------


def _kafka_paths() -> dict[str, Path]:
    root = state_dir()
    return {
        "config": root / "config" / "server.properties",
        "data": root / "data" / "kafka",
        "logs": root / "logs" / "kafka",
        "out": root / "logs" / "kafka.out",
    }


def _server_properties(ports: ServicePorts, data: Path, tls: LocalTls | None = None) -> str:
    """The broker's config; with ``tls``, a SASL_SSL listener on ``ports.secure_kafka`` too."""
    secure_port = ports.secure_kafka if tls is not None else None
    settings = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@{HOST}:{ports.controller}",
        **local_secure.kafka_listener_properties(
            HOST, ports.kafka, ports.controller, secure_port, tls
        ),
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "log.dirs": str(data),
        "num.partitions": "8",
        "num.network.threads": "2",
        "num.io.threads": "4",
        # One node: internal topics cannot be replicated; fewer partitions start faster.
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "8",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "transaction.state.log.num.partitions": "8",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
        # After a SIGKILL the restarted node must outwait its previous session before it
        # can register again; 9 s by default, 4 s here (heartbeats stay every second).
        "broker.session.timeout.ms": "4000",
        "broker.heartbeat.interval.ms": "1000",
    }
    header = "# Generated by stream/services.py at each start; edits are overwritten.\n"
    return header + "".join(f"{key}={value}\n" for key, value in settings.items())


def _java_cmd(libs: Path, logs: Path, *args: str) -> list[str]:
    java_home = os.environ.get("JAVA_HOME")
    java = shutil.which("java", path=str(Path(java_home) / "bin")) if java_home else None
    java = java or shutil.which("java")
    if java is None:
        raise ServiceError("java is not installed: apt-get install -y openjdk-17-jre-headless")
    log4j = resources.files("stream").joinpath("kafka/log4j2.properties")
    return [
        java,
        *KAFKA_JVM_OPTS,
        f"-Dlog4j2.configurationFile={log4j}",
        f"-Dkafka.logs.dir={logs}",
        "-cp",
        f"{libs}/*",
        *args,
    ]


def _kafka_cluster_id() -> str:
    """A Kafka-style id (base64url of a UUID4) without starting a JVM for it."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):  # Kafka avoids ids that look like CLI flags
            return cluster_id


def kafka_up(port: int | None = None, *, timeout: float = 90.0, secure: bool | None = None) -> int:
    """Start the broker unless it is already up; format storage on first start; return pid.

    ``secure`` (default ``TWIN_LOCAL_KAFKA_SECURE``) adds the SASL_SSL listener and
    makes sure its SCRAM user logs in (see :func:`_ensure_scram_user`).
    """
    if secure is None:
        secure = local_secure.env_flag("TWIN_LOCAL_KAFKA_SECURE")
    ports = ServicePorts.resolve(kafka=port)
    paths = _kafka_paths()
    logs = (paths["logs"] / "server.log", paths["out"])
    pid = pid_of("kafka")
    if pid is not None:
        running_port = _configured_port("kafka")
        if running_port not in (None, ports.kafka):
            raise ServiceError(
                f"kafka from {state_dir()} already runs on port {running_port}, not"
                f" {ports.kafka}; run `twinstream services down --only kafka` first"
            )
        if secure and _configured_secure_port() is None:
            raise ServiceError(
                f"kafka from {state_dir()} runs without the secure listener;"
                " run `twinstream services restart --only kafka --secure`"
            )
        _wait_ready("kafka", pid, ports.kafka, timeout, logs)
        return pid
    _require_free("kafka", ports.kafka, ports.controller)
    if secure:
        _require_free("kafka", ports.secure_kafka)
    libs = ensure_kafka_jars()
    tls = _local_tls() if secure else None
    creds = _kafka_scram_credentials() if secure else None
    for key in ("data", "logs"):
        paths[key].mkdir(parents=True, exist_ok=True)
    paths["config"].parent.mkdir(parents=True, exist_ok=True)
    paths["config"].write_text(_server_properties(ports, paths["data"], tls))
    if not (paths["data"] / "meta.properties").exists():
        cluster_id = _kafka_cluster_id()
        fmt = ["kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(paths["config"])]
        if creds is not None:
            # SCRAM users are metadata records: format writes them before the first start.
            user = f"{local_secure.MECHANISM}=[name={creds.user},password={creds.password}]"
            fmt += ["--add-scram", user]
        _run(
            _java_cmd(libs, paths["logs"], *fmt),
            "formatting Kafka storage",
            f"remove {paths['data']} if it holds a half-formatted log dir and retry",
            redact=(creds.password,) if creds else (),
        )
        logger.info("formatted Kafka storage in %s (cluster id %s)", paths["data"], cluster_id)
    pid = _spawn(
        "kafka", _java_cmd(libs, paths["logs"], "kafka.Kafka", str(paths["config"])), paths["out"]
    )
    try:
        _wait_ready("kafka", pid, ports.kafka, timeout, logs)
        if tls is not None and creds is not None:
            _ensure_scram_user(libs, ports, tls, creds)
    except ServiceError:
        _stop("kafka", timeout=10.0)
        raise
    return pid


def _kafka_scram_credentials() -> local_secure.Credentials:
    try:
        creds = local_secure.kafka_credentials(secure_env_file())
    except local_secure.LocalSecurityError as exc:
        raise ServiceError(str(exc)) from exc
    if creds.generated:
        logger.info("generated a SCRAM password for %s (kept in %s)", creds.user, secure_env_file())
    return creds


def _ensure_scram_user(
    libs: Path, ports: ServicePorts, tls: LocalTls, creds: local_secure.Credentials
) -> None:
    """Log in over SASL_SSL; if refused, upsert the SCRAM user with kafka-configs and retry.

    A state dir formatted without the user (plain mode before, or another
    password) gets it here, through the PLAINTEXT listener and a 0600 file,
    so the password never appears on a command line. Then records the client
    settings in ``secure.env``.
    """
    why = local_secure.scram_login(HOST, ports.secure_kafka, tls.ca, creds)
    if why == "auth":
        logger.info("setting the SCRAM credential of %s with kafka-configs", creds.user)
        config = state_dir() / "run" / "scram-user.properties"
        fd = os.open(config, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(f"{local_secure.MECHANISM}=iterations=8192,password={creds.password}\n")
        try:
            alter = ["kafka.admin.ConfigCommand", "--bootstrap-server", f"{HOST}:{ports.kafka}"]
            alter += ["--alter", "--entity-type", "users", "--entity-name", creds.user]
            alter += ["--add-config-file", str(config)]
            _run(
                _java_cmd(libs, _kafka_paths()["logs"], *alter),
                "adding the SCRAM user",
                "check the broker log; or remove $TWIN_STATE_DIR/data/kafka to re-format",
                redact=(creds.password,),
            )
        finally:
            config.unlink(missing_ok=True)
        # The credential reaches the listener through the metadata log: moments, not more.
        for _ in range(20):
            why = local_secure.scram_login(HOST, ports.secure_kafka, tls.ca, creds)
            if why != "auth":
                break
            time.sleep(0.5)
    if why is not None:
        raise ServiceError(
            f"SCRAM login as {creds.user} on {HOST}:{ports.secure_kafka} failed ({why});"
            f" read {_kafka_paths()['logs'] / 'server.log'}"
        )
    local_secure.update_env_file(
        secure_env_file(),
        {
            "TWIN_KAFKA_BOOTSTRAP": f"{HOST}:{ports.secure_kafka}",
            "TWIN_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "TWIN_KAFKA_SASL_MECHANISM": local_secure.MECHANISM,
            "TWIN_KAFKA_SASL_USERNAME": creds.user,
            "TWIN_KAFKA_SASL_PASSWORD": creds.password,
            "TWIN_KAFKA_SSL_CAFILE": str(tls.ca),
        },
    )


def kafka_down(*, timeout: float = 30.0) -> bool:
    """Stop the broker; return whether one was running."""
    return _stop("kafka", timeout)


# --- redis --------------------------------------------------------------------------------


def _redis_paths() -> dict[str, Path]:
    root = state_dir()
    return {
        "config": root / "config" / "redis.conf",
        "acl": root / "config" / "users.acl",
        "data": root / "data" / "redis",
        "log": root / "logs" / "redis.log",
        "out": root / "logs" / "redis.out",
    }


def redis_up(
    port: int | None = None,
    *,
    timeout: float = 15.0,
    acl: bool | None = None,
    tls: bool | None = None,
) -> int:
    """Start Redis (AOF on, bound to localhost) unless it is already up; return pid.

    ``acl`` (default ``TWIN_LOCAL_REDIS_ACL``): the default user off, only the
    twinstream user of :func:`stream.security.redis_acl_file`. ``tls`` (default
    ``TWIN_LOCAL_REDIS_TLS``): a TLS port on ``ports.redis_tls`` too.
    """
    if acl is None:
        acl = local_secure.env_flag("TWIN_LOCAL_REDIS_ACL")
    if tls is None:
        tls = local_secure.env_flag("TWIN_LOCAL_REDIS_TLS")
    ports = ServicePorts.resolve(redis=port)
    paths = _redis_paths()
    pid = pid_of("redis")
    if pid is not None:
        running_port = _configured_port("redis")
        if running_port not in (None, ports.redis):
            raise ServiceError(
                f"redis from {state_dir()} already runs on port {running_port}, not"
                f" {ports.redis}; run `twinstream services down --only redis` first"
            )
        running = _redis_config_text()
        for wanted, word, flag in (
            (acl, "aclfile", "--redis-acl"),
            (tls, "tls-port", "--redis-tls"),
        ):
            if wanted and f"\n{word} " not in running:
                raise ServiceError(
                    f"redis from {state_dir()} runs without {flag};"
                    f" run `twinstream services restart --only redis {flag}`"
                )
        _wait_ready("redis", pid, ports.redis, timeout, (paths["log"], paths["out"]))
        return pid
    _require_free("redis", ports.redis)
    if tls:
        _require_free("redis", ports.redis_tls)
    server = ensure_redis_installed()
    paths["data"].mkdir(parents=True, exist_ok=True)
    paths["log"].parent.mkdir(parents=True, exist_ok=True)
    paths["config"].parent.mkdir(parents=True, exist_ok=True)
    secure_conf, client_env = _redis_secure_conf(ports, paths["acl"], acl, tls)
    paths["config"].write_text(
        "# Generated by stream/services.py at each start; edits are overwritten.\n"
        f"bind {HOST}\nport {ports.redis}\nprotected-mode yes\n"
        f'dir "{paths["data"]}"\nlogfile "{paths["log"]}"\nloglevel notice\n'
        # We detach it ourselves and keep the pid file, so it must stay in the foreground.
        "daemonize no\nsupervised no\n"
        "appendonly yes\nappendfsync everysec\n"
        # The AOF is the persistence. Redis's default RDB snapshots ("save 3600 1
        # 300 100 60 10000") came on top: a forked child writing the whole dataset
        # about every minute under load, competing for CPU with the worker (seen
        # next to the growing latency of a 60 s run at 2,000 events/s).
        'save ""\n' + secure_conf
    )
    pid = _spawn("redis", [server, str(paths["config"])], paths["out"])
    try:
        _wait_ready("redis", pid, ports.redis, timeout, (paths["log"], paths["out"]))
    except ServiceError:
        _stop("redis", timeout=10.0)
        raise
    if client_env:
        local_secure.update_env_file(secure_env_file(), client_env)
    return pid


def _redis_config_text() -> str:
    try:
        return "\n" + _redis_paths()["config"].read_text()
    except OSError:
        return ""


def _redis_secure_conf(
    ports: ServicePorts, aclfile: Path, acl: bool, tls: bool
) -> tuple[str, dict[str, str]]:
    """redis.conf lines of the ACL / TLS modes, and the client settings they imply."""
    from stream.security import redis_acl_file

    conf = ""
    creds = None
    if acl:
        try:
            creds = local_secure.redis_credentials(secure_env_file())
            prefix = os.environ.get("TWIN_KEY_PREFIX") or "ts"
            text = redis_acl_file(
                creds.user, creds.password, prefix, os.environ.get("TWIN_REDIS_ADMIN_PASSWORD")
            )
        except (local_secure.LocalSecurityError, ValueError) as exc:
            raise ServiceError(str(exc)) from exc
        fd = os.open(aclfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        conf += f'aclfile "{aclfile}"\n'
    else:
        aclfile.unlink(missing_ok=True)
    local_tls = None
    if tls:
        local_tls = _local_tls()
        conf += local_secure.redis_tls_conf(local_tls, ports.redis_tls)
    if not (acl or tls):
        return conf, {}
    port = ports.redis_tls if local_tls else ports.redis
    env = {"TWIN_REDIS_URL": local_secure.redis_url(HOST, port, creds, local_tls)}
    if creds is not None:
        env |= {"TWIN_REDIS_USER": creds.user, "TWIN_REDIS_PASSWORD": creds.password}
    return conf, env


def redis_down(*, timeout: float = 30.0) -> bool:
    """Stop Redis (it rewrites nothing, the AOF is fsynced on SIGTERM); return whether it ran."""
    return _stop("redis", timeout)


# --- both ---------------------------------------------------------------------------------


def _stop(name: str, timeout: float) -> bool:
    pid = pid_of(name)
    if pid is None:
        return False
    logger.info("stopping %s (pid %d)", name, pid)
    _terminate(pid, timeout)
    pid_file(name).unlink(missing_ok=True)
    return True


def _configured_port(name: str) -> int | None:
    """The port in the generated config, i.e. the one the last start used."""
    if name == "kafka":
        return _advertised_port("PLAINTEXT")
    with contextlib.suppress(OSError, ValueError):
        for line in _redis_paths()["config"].read_text().splitlines():
            if line.startswith("port "):
                return int(line.split()[1])
    return None


def _configured_secure_port() -> int | None:
    """The SASL_SSL port of the last Kafka start, None when it ran without one."""
    return _advertised_port("SASL_SSL")


def _advertised_port(listener: str) -> int | None:
    with contextlib.suppress(OSError, ValueError):
        for line in _kafka_paths()["config"].read_text().splitlines():
            if line.startswith("advertised.listeners="):
                for url in line.split("=", 1)[1].split(","):
                    if url.startswith(f"{listener}://"):
                        return int(url.rsplit(":", 1)[-1])
    return None


def _selected(components: Iterable[str]) -> list[str]:
    return [_check_name(name) for name in components]


def up(
    components: Iterable[str] = COMPONENTS,
    *,
    kafka_port: int | None = None,
    redis_port: int | None = None,
    secure: bool | None = None,
    redis_acl: bool | None = None,
    redis_tls: bool | None = None,
) -> list[ServiceStatus]:
    """Start what is not running yet and wait until each answers; a no-op when all are up.

    ``secure``, ``redis_acl`` and ``redis_tls`` default to ``TWIN_LOCAL_KAFKA_SECURE``,
    ``TWIN_LOCAL_REDIS_ACL`` and ``TWIN_LOCAL_REDIS_TLS`` (all off).
    """
    ports = ServicePorts.resolve(kafka_port, redis_port)
    selected = _selected(components)
    if secure is None:
        secure = local_secure.env_flag("TWIN_LOCAL_KAFKA_SECURE")
    if redis_tls is None:
        redis_tls = local_secure.env_flag("TWIN_LOCAL_REDIS_TLS")
    kafka_ports = {ports.kafka, ports.controller} | ({ports.secure_kafka} if secure else set())
    redis_ports = {ports.redis} | ({ports.redis_tls} if redis_tls else set())
    if "kafka" in selected and "redis" in selected and kafka_ports & redis_ports:
        raise ServiceError(
            f"Redis ports {sorted(redis_ports)} collide with Kafka's {sorted(kafka_ports)}"
            " (secure mode takes kafka port + 2, Redis TLS redis port + 1); choose other ports"
        )
    with _file_lock(state_dir() / "run" / "services.lock"):
        # Refuse before starting anything, rather than leave one service half up.
        if "kafka" in selected and pid_of("kafka") is None:
            _require_free("kafka", *sorted(kafka_ports))
        if "redis" in selected and pid_of("redis") is None:
            _require_free("redis", *sorted(redis_ports))
        if "redis" in selected:
            redis_up(ports.redis, acl=redis_acl, tls=redis_tls)
        if "kafka" in selected:
            kafka_up(ports.kafka, secure=secure)
    return [line for line in status() if line.name in selected]


def down(components: Iterable[str] = COMPONENTS, *, timeout: float = 30.0) -> None:
    """Stop the services; data stays under ``$TWIN_STATE_DIR/data``."""
    selected = _selected(components)
    with _file_lock(state_dir() / "run" / "services.lock"):
        # Kafka first: Faust may still flush to Redis while the broker drains.
        for name in ("kafka", "redis"):
            if name in selected:
                _stop(name, timeout)


def restart(
    components: Iterable[str] = COMPONENTS,
    *,
    kafka_port: int | None = None,
    redis_port: int | None = None,
    secure: bool | None = None,
    redis_acl: bool | None = None,
    redis_tls: bool | None = None,
) -> list[ServiceStatus]:
    """``down`` then ``up``, keeping data."""
    selected = _selected(components)
    down(selected)
    return up(
        selected,
        kafka_port=kafka_port,
        redis_port=redis_port,
        secure=secure,
        redis_acl=redis_acl,
        redis_tls=redis_tls,
    )


def status() -> list[ServiceStatus]:
    """Whether each service runs and answers, from pid files and a live probe."""
    lines = []
    for name in COMPONENTS:
        pid = pid_of(name)
        port = _configured_port(name)
        address = f"{HOST}:{port}" if port else None
        if pid is None:
            lines.append(ServiceStatus(name, False, None, address, "stopped"))
        elif port is not None and _answers(name, port):
            lines.append(ServiceStatus(name, True, pid, address, "ready" + _secure_detail(name)))
        else:
            detail = "process alive but not answering (starting, stopped or hung)"
            lines.append(ServiceStatus(name, False, pid, address, detail))
    return lines


def _secure_detail(name: str) -> str:
    if name == "kafka":
        port = _configured_secure_port()
        return f"; SASL_SSL on {HOST}:{port}" if port else ""
    config = _redis_config_text()
    parts = ["ACL (default user off)"] if "\naclfile " in config else []
    for line in config.splitlines():
        if line.startswith("tls-port "):
            parts.append(f"TLS on {HOST}:{line.split()[1]}")
    return "".join(f"; {part}" for part in parts)


# --- command line -------------------------------------------------------------------------


def _print_status(lines: list[ServiceStatus]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table("service", "state", "pid", "address", "detail")
    for line in lines:
        state = "[green]up[/]" if line.running else "[red]down[/]"
        table.add_row(line.name, state, str(line.pid or "-"), line.address or "-", line.detail)
    Console().print(table)
    print(f"state: {state_dir()}")


def main_services(argv: list[str]) -> int:
    """Run ``twinstream services up|down|restart|status``; return the exit code."""
    parser = argparse.ArgumentParser(
        prog="twinstream services", description="Local Kafka and Redis for twinstream."
    )
    parser.add_argument("action", choices=("up", "down", "restart", "status"))
    parser.add_argument(
        "--kafka-port", type=int, default=None, help="default 9092 or $TWIN_LOCAL_KAFKA_PORT"
    )
    parser.add_argument(
        "--redis-port", type=int, default=None, help="default 6379 or $TWIN_LOCAL_REDIS_PORT"
    )
    parser.add_argument("--only", choices=COMPONENTS, default=None, help="act on one service")
    parser.add_argument(
        "--secure",
        action="store_true",
        default=None,
        help="Kafka: add a SASL_SSL (SCRAM-SHA-512) listener on kafka port + 2"
        " (or TWIN_LOCAL_KAFKA_SECURE=1)",
    )
    parser.add_argument(
        "--redis-acl",
        action="store_true",
        default=None,
        help="Redis: default user off, twinstream ACL user with TWIN_REDIS_PASSWORD"
        " (or TWIN_LOCAL_REDIS_ACL=1)",
    )
    parser.add_argument(
        "--redis-tls",
        action="store_true",
        default=None,
        help="Redis: add a TLS port on redis port + 1 (or TWIN_LOCAL_REDIS_TLS=1)",
    )
    args = parser.parse_args(argv)
    modes = {"secure": args.secure, "redis_acl": args.redis_acl, "redis_tls": args.redis_tls}
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    components = (args.only,) if args.only else COMPONENTS
    started = time.monotonic()
    try:
        if args.action == "up":
            up(components, kafka_port=args.kafka_port, redis_port=args.redis_port, **modes)
        elif args.action == "restart":
            restart(components, kafka_port=args.kafka_port, redis_port=args.redis_port, **modes)
        elif args.action == "down":
            down(components)
    except ServiceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.action != "status":
        logger.info("%s done in %.1fs", args.action, time.monotonic() - started)
    lines = status()
    _print_status(lines)
    secured = any(line.running and ";" in line.detail for line in lines)
    if args.action != "down" and secured and secure_env_file().exists():
        ca = state_dir() / "tls" / "ca.pem"
        if ca.exists():
            print(f"CA certificate: {ca}")
        print(f"client settings (with passwords): set -a; . {secure_env_file()}; set +a")
    return 0
