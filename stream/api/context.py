"""What every route needs, built once by :func:`stream.api.app.create_api`."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from fastapi import Request

from stream.api.acks import AckPublisher
from stream.api.feed import AlertFeed
from stream.api.probes import KafkaProbe, RedisProbe
from stream.settings import Settings
from stream.store import TwinStore
from twin.config import TwinConfig

__all__ = ["ApiContext", "get_context"]


@dataclass
class ApiContext:
    """The API's ports and settings."""

    settings: Settings
    store: TwinStore
    publisher: AckPublisher
    feed: AlertFeed
    config: TwinConfig
    min_group: int
    kafka: KafkaProbe | None = None
    """None when this API runs without Kafka (tests with in-memory ports)."""
    redis: RedisProbe | None = None
    """None for a ``memory://`` store: no consumer lag to read."""
    feed_ready: asyncio.Event = field(default_factory=asyncio.Event)
    """Set once the alert consumer sits at the topic's end (or when there is none)."""


def get_context(request: Request) -> ApiContext:
    """FastAPI dependency: the app's :class:`ApiContext`."""
    ctx: ApiContext = request.app.state.ctx
    return ctx
