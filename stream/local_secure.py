"""The secure mode of the local services: what ``stream.services`` adds to its configs.

* Kafka (``--secure`` / ``TWIN_LOCAL_KAFKA_SECURE=1``): a ``SASL_SSL`` listener on
  kafka port + 2 next to the ``PLAINTEXT`` one, TLS from the local CA
  (:mod:`stream.local_tls`), SCRAM-SHA-512 only.
* Redis (``--redis-acl`` / ``TWIN_LOCAL_REDIS_ACL=1``): an aclfile with the
  twinstream user of :mod:`stream.security` and the ``default`` user off;
  (``--redis-tls`` / ``TWIN_LOCAL_REDIS_TLS=1``): a TLS port on redis port + 1.

Credentials come from the environment (``TWIN_KAFKA_SASL_USERNAME`` /
``TWIN_KAFKA_SASL_PASSWORD``, ``TWIN_REDIS_USER`` / ``TWIN_REDIS_PASSWORD``,
optional ``TWIN_REDIS_ADMIN_PASSWORD``). A password that is not set is taken
from ``$TWIN_STATE_DIR/secure.env`` or generated once and kept there; that file
(mode 0600) holds the client settings: ``set -a; . $TWIN_STATE_DIR/secure.env``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import re
import secrets
import shlex
import ssl
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from stream.local_tls import LocalTls

__all__ = [
    "MECHANISM",
    "Credentials",
    "LocalSecurityError",
    "env_flag",
    "kafka_credentials",
    "kafka_listener_properties",
    "read_env_file",
    "redis_credentials",
    "redis_tls_conf",
    "redis_url",
    "scram_login",
    "update_env_file",
]

MECHANISM = "SCRAM-SHA-512"
# Characters Kafka's SCRAM parsers (StorageTool --add-scram, kafka-configs) take unquoted.
_SAFE_SECRET = re.compile(r"^[A-Za-z0-9_.~@%+*!$^-]{8,128}$")
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


class LocalSecurityError(Exception):
    """Secure mode could not be set up; the message says which setting to fix."""


@dataclass(frozen=True)
class Credentials:
    user: str
    password: str
    generated: bool


def env_flag(name: str) -> bool:
    """``1``/``true``/``yes``/``on`` (any case) in the environment.

    >>> env_flag("TWIN_SURELY_UNSET_FLAG")
    False
    """
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def read_env_file(path: Path) -> dict[str, str]:
    """``KEY=value`` lines (shell-quoted values) of a ``secure.env`` file; {} when absent."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    found: dict[str, str] = {}
    for line in text.splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            key, raw = line.split("=", 1)
            parts = shlex.split(raw)
            found[key.strip()] = parts[0] if parts else ""
    return found


def update_env_file(path: Path, values: dict[str, str]) -> None:
    """Merge ``values`` into the 0600 env file at ``path`` (created if needed)."""
    merged = {**read_env_file(path), **values}
    lines = ["# twinstream local secure mode: client settings. `set -a; . THIS_FILE`"]
    lines += [f"{key}={shlex.quote(value)}" for key, value in sorted(merged.items())]
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write("\n".join(lines) + "\n")
    path.chmod(0o600)


def _credentials(
    env_file: Path, user_var: str, password_var: str, default_user: str
) -> Credentials:
    kept = read_env_file(env_file)
    user = os.environ.get(user_var) or kept.get(user_var) or default_user
    password = os.environ.get(password_var) or kept.get(password_var)
    generated = not password
    password = password or secrets.token_urlsafe(24)
    if not _SAFE_NAME.match(user):
        raise LocalSecurityError(f"{user_var}={user!r}: use letters, digits, '_', '.', '-'")
    if not _SAFE_SECRET.match(password):
        raise LocalSecurityError(
            f"{password_var}: use 8-128 characters from letters, digits and _.~@%+*!$^-"
            " (Kafka's SCRAM tools split on ',', '=' and brackets)"
        )
    return Credentials(user, password, generated)


def kafka_credentials(env_file: Path) -> Credentials:
    """The SCRAM user of the local broker: ``TWIN_KAFKA_SASL_USERNAME`` / ``_PASSWORD``."""
    return _credentials(
        env_file, "TWIN_KAFKA_SASL_USERNAME", "TWIN_KAFKA_SASL_PASSWORD", "twinstream"
    )


def redis_credentials(env_file: Path) -> Credentials:
    """The Redis ACL user: ``TWIN_REDIS_USER`` (twinstream) / ``TWIN_REDIS_PASSWORD``."""
    return _credentials(env_file, "TWIN_REDIS_USER", "TWIN_REDIS_PASSWORD", "twinstream")


def kafka_listener_properties(
    host: str, plain_port: int, controller_port: int, secure_port: int | None, tls: LocalTls | None
) -> dict[str, str]:
    """The listener part of ``server.properties``, with the SASL_SSL listener when asked.

    >>> props = kafka_listener_properties("127.0.0.1", 9092, 9093, None, None)
    >>> props["advertised.listeners"]
    'PLAINTEXT://127.0.0.1:9092'
    >>> props = kafka_listener_properties("127.0.0.1", 9092, 9093, 9094, LocalTls(Path("/t")))
    >>> props["advertised.listeners"], props["sasl.enabled.mechanisms"]
    ('PLAINTEXT://127.0.0.1:9092,SASL_SSL://127.0.0.1:9094', 'SCRAM-SHA-512')
    """
    listeners = [f"PLAINTEXT://{host}:{plain_port}", f"CONTROLLER://{host}:{controller_port}"]
    advertised = [f"PLAINTEXT://{host}:{plain_port}"]
    protocols = ["PLAINTEXT:PLAINTEXT", "CONTROLLER:PLAINTEXT"]
    props: dict[str, str] = {}
    if secure_port is not None:
        if tls is None:
            raise LocalSecurityError("the SASL_SSL listener needs the local TLS material")
        listeners.append(f"SASL_SSL://{host}:{secure_port}")
        advertised.append(f"SASL_SSL://{host}:{secure_port}")
        protocols.append("SASL_SSL:SASL_SSL")
        jaas = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
        props = {
            "sasl.enabled.mechanisms": MECHANISM,
            "listener.name.sasl_ssl.sasl.enabled.mechanisms": MECHANISM,
            f"listener.name.sasl_ssl.{MECHANISM.lower()}.sasl.jaas.config": jaas,
            # Kafka reads PEM key + certificate chain directly (no JKS, no keytool).
            "listener.name.sasl_ssl.ssl.keystore.type": "PEM",
            "listener.name.sasl_ssl.ssl.keystore.location": str(tls.bundle),
            "listener.name.sasl_ssl.ssl.client.auth": "none",
            "ssl.enabled.protocols": "TLSv1.3,TLSv1.2",
        }
    return {
        "listeners": ",".join(listeners),
        "advertised.listeners": ",".join(advertised),
        "listener.security.protocol.map": ",".join(protocols),
        **props,
    }


def scram_login(
    host: str, port: int, cafile: Path, creds: Credentials, timeout: float = 10.0
) -> str | None:
    """Log in over SASL_SSL once; None on success, else why not (``auth`` for bad credentials)."""

    async def attempt() -> str | None:
        from aiokafka.conn import create_conn
        from aiokafka.errors import KafkaError, SaslAuthenticationFailed

        context = ssl.create_default_context(cafile=str(cafile))
        try:
            conn = await asyncio.wait_for(
                create_conn(
                    host,
                    port,
                    security_protocol="SASL_SSL",
                    ssl_context=context,
                    sasl_mechanism=MECHANISM,
                    sasl_plain_username=creds.user,
                    sasl_plain_password=creds.password,
                    request_timeout_ms=int(timeout * 1000),
                ),
                timeout,
            )
        except SaslAuthenticationFailed:
            return "auth"
        except (KafkaError, OSError, ssl.SSLError, TimeoutError) as exc:
            return f"{type(exc).__name__}: {exc}"
        conn.close()
        return None

    # A thread of its own, so this also works when called from inside a running loop.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, attempt()).result()


def redis_tls_conf(tls: LocalTls, tls_port: int) -> str:
    """redis.conf lines for a TLS port beside the plain one (server auth only)."""
    return (
        f"tls-port {tls_port}\n"
        f'tls-cert-file "{tls.cert}"\ntls-key-file "{tls.key}"\n'
        f'tls-ca-cert-file "{tls.ca}"\n'
        # Clients prove who they are with the ACL password, not a certificate.
        'tls-auth-clients no\ntls-protocols "TLSv1.2 TLSv1.3"\n'
    )


def redis_url(host: str, port: int, creds: Credentials | None, tls: LocalTls | None) -> str:
    """The ``TWIN_REDIS_URL`` for the local Redis in the mode it runs in.

    >>> redis_url("127.0.0.1", 6379, Credentials("twinstream", "pw", False), None)
    'redis://twinstream:pw@127.0.0.1:6379/0'
    """
    auth = f"{quote(creds.user, safe='')}:{quote(creds.password, safe='')}@" if creds else ""
    if tls is None:
        return f"redis://{auth}{host}:{port}/0"
    return f"rediss://{auth}{host}:{port}/0?ssl_ca_certs={quote(str(tls.ca))}"
