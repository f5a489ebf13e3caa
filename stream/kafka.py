"""Kafka plumbing shared by the worker, the CLI and the tests: client options
from settings, and topic creation with a co-partitioning check."""

from __future__ import annotations

import asyncio
import logging
import ssl
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from stream.settings import Settings

__all__ = ["TopicLayoutError", "all_topics", "ensure_topics", "kafka_client_options"]

log = logging.getLogger(__name__)


class TopicLayoutError(Exception):
    """An existing topic has the wrong partition count.

    Twin topics must be co-partitioned (same count) so one worker holds all of
    a patient's events. Recreate the topic with ``TWIN_PARTITIONS`` partitions,
    or set ``TWIN_PARTITIONS`` to the existing count.
    """


def kafka_client_options(settings: Settings) -> dict[str, Any]:
    """Connection options for aiokafka clients (security from settings)."""
    opts: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap,
        "security_protocol": settings.kafka_security_protocol,
    }
    if settings.kafka_security_protocol in ("SSL", "SASL_SSL"):
        opts["ssl_context"] = ssl.create_default_context(cafile=settings.kafka_ssl_cafile)
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
        existing = {t["topic"]: t for t in await admin.describe_topics(list(wanted))}
        missing = [t for t in wanted if not existing.get(t, {}).get("partitions")]
        if missing:
            await admin.create_topics(
                [NewTopic(t, settings.partitions, settings.replication_factor) for t in missing]
            )
            log.info("created %d topics", len(missing))
        for name, meta in existing.items():
            count = len(meta.get("partitions") or [])
            if count and count != settings.partitions:
                raise TopicLayoutError(
                    f"topic {name} has {count} partitions, expected {settings.partitions}"
                )
        # Wait until the new topics have leaders, so the first produce succeeds.
        while missing:
            meta = await admin.describe_topics(missing)
            ready = {t["topic"] for t in meta if t.get("partitions") and t["error_code"] == 0}
            missing = [t for t in missing if t not in ready]
            if missing:
                if asyncio.get_running_loop().time() > deadline:
                    raise TimeoutError(f"topics not ready: {missing}")
                await asyncio.sleep(0.2)
    finally:
        await admin.close()
