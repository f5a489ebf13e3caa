"""Kafka plumbing shared by the worker, the CLI and the tests: client options
from settings, and topic creation with a co-partitioning check."""

from __future__ import annotations

import asyncio
import logging
import ssl
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from stream.settings import Settings

__all__ = [
    "KafkaSecurityError",
    "TopicLayoutError",
    "all_topics",
    "ensure_topics",
    "kafka_client_options",
    "kafka_ssl_context",
]

log = logging.getLogger(__name__)


class TopicLayoutError(Exception):
    """An existing topic has the wrong partition count.

    Twin topics must be co-partitioned (same count) so one worker holds all of
    a patient's events. Recreate the topic with ``TWIN_PARTITIONS`` partitions,
    or set ``TWIN_PARTITIONS`` to the existing count.
    """


class KafkaSecurityError(Exception):
    """The ``TWIN_KAFKA_*`` security settings do not fit together.

    ``SASL_SSL`` / ``SASL_PLAINTEXT`` need ``TWIN_KAFKA_SASL_MECHANISM``,
    ``_USERNAME`` and ``_PASSWORD``; a SASL mechanism needs a ``SASL_*``
    protocol; ``TWIN_KAFKA_SSL_CAFILE`` must be a readable file. Fix the
    variable the message names (``SECURITY.md`` lists a working set).
    """


def kafka_ssl_context(settings: Settings) -> ssl.SSLContext | None:
    """The TLS context of ``SSL`` / ``SASL_SSL`` (hostname checked, CA from
    ``TWIN_KAFKA_SSL_CAFILE`` or the system store); None for the plaintext protocols."""
    if settings.kafka_security_protocol not in ("SSL", "SASL_SSL"):
        return None
    try:
        context = ssl.create_default_context(cafile=settings.kafka_ssl_cafile)
    except (OSError, ssl.SSLError) as exc:
        raise KafkaSecurityError(
            f"TWIN_KAFKA_SSL_CAFILE={settings.kafka_ssl_cafile!r} is not a readable PEM CA"
            f" bundle ({exc})"
        ) from None
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def _check_security(settings: Settings) -> None:
    sasl_protocol = settings.kafka_security_protocol.startswith("SASL_")
    if settings.kafka_sasl_mechanism and not sasl_protocol:
        raise KafkaSecurityError(
            f"TWIN_KAFKA_SASL_MECHANISM is set but TWIN_KAFKA_SECURITY_PROTOCOL is"
            f" {settings.kafka_security_protocol}: use SASL_SSL (or unset the mechanism)"
        )
    if sasl_protocol:
        missing = [
            name
            for name, value in (
                ("TWIN_KAFKA_SASL_MECHANISM", settings.kafka_sasl_mechanism),
                ("TWIN_KAFKA_SASL_USERNAME", settings.kafka_sasl_username),
                ("TWIN_KAFKA_SASL_PASSWORD", settings.kafka_sasl_password),
            )
            if not value
        ]
        if missing:
            raise KafkaSecurityError(
                f"TWIN_KAFKA_SECURITY_PROTOCOL={settings.kafka_security_protocol} needs"
                f" {', '.join(missing)}"
            )


def kafka_client_options(settings: Settings) -> dict[str, Any]:
    """Connection options for aiokafka clients (security from settings).

    >>> from pydantic import SecretStr
    >>> opts = kafka_client_options(Settings(kafka_bootstrap="k:9094",
    ...     kafka_security_protocol="SASL_SSL", kafka_sasl_mechanism="SCRAM-SHA-512",
    ...     kafka_sasl_username="twinstream", kafka_sasl_password=SecretStr("pw")))
    >>> opts["security_protocol"], opts["sasl_mechanism"], opts["ssl_context"].check_hostname
    ('SASL_SSL', 'SCRAM-SHA-512', True)
    >>> kafka_client_options(Settings(kafka_security_protocol="SASL_SSL"))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    stream.kafka.KafkaSecurityError: ...SASL_SSL needs TWIN_KAFKA_SASL_MECHANISM, ...
    """
    _check_security(settings)
    opts: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap,
        "security_protocol": settings.kafka_security_protocol,
    }
    context = kafka_ssl_context(settings)
    if context is not None:
        opts["ssl_context"] = context
    if settings.kafka_sasl_mechanism:
        opts["sasl_mechanism"] = settings.kafka_sasl_mechanism
        opts["sasl_plain_username"] = settings.kafka_sasl_username
        pw = settings.kafka_sasl_password
        opts["sasl_plain_password"] = pw.get_secret_value() if pw else None
    return opts


def all_topics(settings: Settings) -> tuple[str, ...]:
    """Every topic twinstream reads or writes."""
    return (
        settings.topic_vitals,
        settings.topic_labs,
        settings.topic_wearables,
        settings.topic_profiles,
        settings.topic_fhir,
        settings.topic_outcomes,
        settings.topic_alert_acks,
        settings.topic_alerts,
        settings.topic_deadletter,
    )


async def ensure_topics(settings: Settings, timeout_s: float = 60.0) -> None:
    """Create missing topics with ``settings.partitions`` partitions; check existing ones."""
    admin = AIOKafkaAdminClient(**kafka_client_options(settings), request_timeout_ms=30000)
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        try:
            await admin.start()
            break
        except Exception:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(1.0)
    try:
        wanted = all_topics(settings)
        # list_topics() asks for all topics; naming topics in a metadata request
        # could make a broker with auto-create on create them with its defaults.
        present = set(await admin.list_topics())
        missing = [t for t in wanted if t not in present]
        if missing:
            response = await admin.create_topics(
                [NewTopic(t, settings.partitions, settings.replication_factor) for t in missing]
            )
            for topic, code, *_ in response.topic_errors:
                if code not in (0, 36):  # 36: TOPIC_ALREADY_EXISTS (a racing creator)
                    raise TopicLayoutError(f"creating topic {topic} failed: error code {code}")
            log.info("created %d topics", len(missing))
        while True:
            meta = {t["topic"]: t for t in await admin.describe_topics(list(wanted))}
            for name, info in meta.items():
                count = len(info.get("partitions") or [])
                if count and count != settings.partitions:
                    raise TopicLayoutError(
                        f"topic {name} has {count} partitions, expected {settings.partitions}"
                    )
            # Wait until every partition has a leader, so the first produce succeeds.
            ready = all(
                info["error_code"] == 0
                and info.get("partitions")
                and all(p["error_code"] == 0 and p["leader"] >= 0 for p in info["partitions"])
                for info in meta.values()
            )
            if ready and len(meta) == len(wanted):
                return
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError("twin topics have no leaders yet")
            await asyncio.sleep(0.2)
    finally:
        await admin.close()
