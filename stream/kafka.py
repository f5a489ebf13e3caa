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
