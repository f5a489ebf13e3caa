"""The API's ASGI app: :func:`create_api` wires the store, the ack publisher, the live
alert feed, health and metrics routes, the dashboard and the access log.

Public without a token: ``/healthz``, ``/readyz`` (no data), and the dashboard's
static shell ``/`` + ``/static/*`` and the API description ``/openapi.json`` +
``/docs`` (no patient data: every data request they make carries the token).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Response
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from stream.api import routes_alerts, routes_twins
from stream.api.acks import AckPublisher, KafkaAckPublisher
from stream.api.auth import TokenCheck, require_token
from stream.api.context import ApiContext, get_context
from stream.api.feed import AlertFeed, consume_alerts
from stream.api.metrics import render_metrics
from stream.api.probes import KafkaProbe, RedisProbe, consumer_lag
from stream.settings import Settings
from stream.store import RedisTwinStore, TwinStore, open_store

__all__ = ["STATIC_DIR", "AccessLog", "create_api"]

STATIC_DIR = Path(__file__).with_name("static")
access_log = logging.getLogger("twinstream.api.access")
log = logging.getLogger(__name__)


class AccessLog:
    """Logs method, route template and status at INFO (never ids, values or query strings).

    The concrete path goes to DEBUG only. Use instead of uvicorn's access log.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        started = time.perf_counter()

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None)
            if template is None:
                template = "/static/*" if scope["path"].startswith("/static/") else "<unmatched>"
            ms = (time.perf_counter() - started) * 1000
            access_log.info("%s %s %d %.1fms", scope["method"], template, status, ms)
            access_log.debug("%s %s %d", scope["method"], scope["path"], status)


def create_api(
    settings: Settings,
    store: TwinStore | None = None,
    producer: AckPublisher | None = None,
    *,
    kafka: bool | None = None,
    insecure: bool = False,
    feed: AlertFeed | None = None,
) -> FastAPI:
    """The API app.

    ``store`` defaults to the one ``settings.redis_url`` names; ``producer`` to a
    Kafka ack publisher. ``kafka`` (default: True unless a ``producer`` is given)
    starts the live alert consumer and the Kafka readiness/lag probe. Without a
    configured ``api_token`` the app refuses to build unless ``insecure`` is set.
    """
    token = settings.api_token.get_secret_value() if settings.api_token else None
    if not token and not insecure:
        raise ValueError("TWIN_API_TOKEN is not set: refusing to serve patient data without auth")
    use_kafka = producer is None if kafka is None else kafka
    own_store = store is None
    twin_store = store or open_store(
        settings.redis_url,
        settings.partitions,
        settings.key_prefix,
        settings.redis_password_value(),
    )
    ctx = ApiContext(
        settings=settings,
        store=twin_store,
        publisher=producer or KafkaAckPublisher(settings),
        feed=feed or AlertFeed(capacity=settings.api_alert_buffer),
        config=settings.twin_config(),
        min_group=settings.population_min_group,
        kafka=KafkaProbe(settings) if use_kafka else None,
        # Readiness and lag read Redis directly, whenever the twins live there.
        redis=RedisProbe(settings.redis_url, settings.key_prefix, settings.redis_password_value())
        if isinstance(twin_store, RedisTwinStore)
        else None,
    )
    if ctx.kafka is None:
        ctx.feed_ready.set()  # no consumer to wait for

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await ctx.publisher.start()
        task = None
        if ctx.kafka is not None:
            await ctx.kafka.start()
            task = asyncio.create_task(consume_alerts(settings, ctx.feed, ctx.feed_ready))
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            with contextlib.suppress(Exception):
                await ctx.publisher.stop()
            if ctx.kafka is not None:
                await ctx.kafka.stop()
            if ctx.redis is not None:
                await ctx.redis.close()
            if own_store:
                await ctx.store.close()

    app = FastAPI(
        title="twinstream API",
        version="0.1.0",
        description="Patient digital twins: state, scores, alerts, population. "
        "Authenticate with `Authorization: Bearer <TWIN_API_TOKEN>`.",
        lifespan=lifespan,
    )
    app.state.ctx = ctx
    app.state.token_check = TokenCheck(token)
    app.add_middleware(AccessLog)
    app.include_router(routes_twins.router)
    app.include_router(routes_alerts.stream_router)  # before /alerts/{alert_id}/...
    app.include_router(routes_alerts.router)
    _ops_routes(app)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app


Ctx = Annotated[ApiContext, Depends(get_context)]


def _ops_routes(app: FastAPI) -> None:
    @app.get("/healthz", tags=["ops"], response_model=dict[str, str])
    async def healthz() -> dict[str, str]:
        """The process is up."""
        return {"status": "ok"}

    @app.get(
        "/readyz",
        tags=["ops"],
        response_model=dict[str, str],
        responses={503: {"description": "A dependency is not ready."}},
    )
    async def readyz(ctx: Ctx) -> Any:
        """Redis answers PING and Kafka answers a metadata request (and the alert feed runs)."""
        checks = {
            "redis": "not used"
            if ctx.redis is None
            else ("ok" if await ctx.redis.ready() else "down"),
            "kafka": "not used"
            if ctx.kafka is None
            else ("ok" if await ctx.kafka.ready() else "down"),
            "alert_feed": "ok" if ctx.feed_ready.is_set() else "starting",
        }
        ok = all(v in ("ok", "not used") for v in checks.values())
        return JSONResponse({"status": "ok" if ok else "unavailable", **checks}, 200 if ok else 503)

    @app.get(
        "/metrics",
        tags=["ops"],
        dependencies=[Depends(require_token)],
        response_class=Response,
        responses={
            200: {"content": {"text/plain": {}}, "description": "Prometheus text format."},
            401: {"description": "Missing or invalid bearer token."},
        },
    )
    async def metrics(ctx: Ctx) -> Response:
        """Store counters (consumed, applied, duplicates, ...) and consumer lag per partition."""
        counters = await ctx.store.counters()
        lag = None
        if ctx.kafka is not None and ctx.redis is not None:
            try:
                lag = await consumer_lag(ctx.settings, ctx.kafka, ctx.redis)
            except Exception as exc:
                log.warning("consumer lag unavailable: %s", type(exc).__name__)
        return Response(render_metrics(counters, lag), media_type="text/plain; version=0.0.4")

    @app.get("/", include_in_schema=False)
    async def dashboard() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html")
