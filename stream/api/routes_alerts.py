"""Routes about alerts: the list, the live SSE stream, acknowledgements."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Header, HTTPException, Path, Query, Request
from fastapi.responses import StreamingResponse

from schemas.acks import AlertAck
from schemas.alert import Alert, AlertSeverity
from stream.api.auth import require_token, require_token_or_query
from stream.api.context import ApiContext, get_context
from stream.api.models import AckAccepted, AckRequest, AlertList, OpenAlert
from stream.api.routes_twins import ERRORS
from stream.api.views import iter_twins, open_alerts_of
from twin.alerting import SEVERITY_RANK

__all__ = ["HEARTBEAT_S", "router", "sse_frame", "stream_router"]

HEARTBEAT_S = 15.0

router = APIRouter(dependencies=[Depends(require_token)], responses=ERRORS)
stream_router = APIRouter(dependencies=[Depends(require_token_or_query)], responses=ERRORS)

Ctx = Annotated[ApiContext, Depends(get_context)]
Severities = Annotated[
    list[AlertSeverity] | None, Query(description="Only these severities (repeatable).")
]


async def _open_alerts(ctx: ApiContext) -> list[OpenAlert]:
    out: list[OpenAlert] = []
    async for state in iter_twins(ctx.store, ctx.settings.partitions):
        out.extend(open_alerts_of(state))
    out.sort(key=lambda a: (-SEVERITY_RANK[a.severity], a.opened_at, a.alert_id))
    return out


@router.get("/alerts", response_model=AlertList)
async def list_alerts(
    ctx: Ctx,
    status: Annotated[
        Literal["open", "escalated", "reminder", "resolved", "all"],
        Query(
            description="'open': open episodes from the twins and recent 'open' alerts; "
            "another status filters the recent alerts only; 'all': both, unfiltered."
        ),
    ] = "open",
    severity: Severities = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> AlertList:
    """Open alert episodes (from the twins) and recent alerts (from the alerts topic)."""
    wanted = set(severity or ())
    opened = await _open_alerts(ctx) if status in ("open", "all") else []
    recent = [a for _, a in reversed(ctx.feed.recent())]
    if status != "all":
        recent = [a for a in recent if a.status == status]
    if wanted:
        opened = [a for a in opened if a.severity in wanted]
        recent = [a for a in recent if a.severity in wanted]
    return AlertList(open=opened[:limit], recent=recent[:limit])


def sse_frame(seq: int, alert: Alert) -> str:
    """One server-sent event carrying ``alert`` as JSON, with ``seq`` as its id."""
    return f"id: {seq}\nevent: alert\ndata: {alert.model_dump_json()}\n\n"


@stream_router.get(
    "/alerts/stream",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "Alerts as SSE."}},
)
async def alert_stream(
    request: Request,
    ctx: Ctx,
    severity: Severities = None,
    limit: Annotated[
        int | None, Query(ge=1, le=100000, description="Close after this many events.")
    ] = None,
    last_event_id: Annotated[str | None, Header(max_length=20)] = None,
) -> StreamingResponse:
    """Live alerts as server-sent events (``event: alert``, JSON data, numbered ``id``).

    A reconnecting client sending ``Last-Event-ID`` first gets the buffered alerts it
    missed. Authenticate with the header or, for ``EventSource``, ``?token=``.
    A comment line is sent every 15 s to keep proxies from closing the connection.
    """
    wanted = set(severity or ())
    after = int(last_event_id) if last_event_id and last_event_id.isdigit() else None
    feed = ctx.feed

    async def events() -> AsyncIterator[str]:
        sent = 0
        with feed.subscribe() as queue:
            yield ": connected\n\n"
            newest = 0
            backlog = feed.recent(after) if after is not None else []
            for seq, alert in backlog:
                newest = seq
                if not wanted or alert.severity in wanted:
                    yield sse_frame(seq, alert)
                    sent += 1
                    if limit is not None and sent >= limit:
                        return
            while True:
                try:
                    seq, alert = await asyncio.wait_for(queue.get(), HEARTBEAT_S)
                except TimeoutError:
                    if await request.is_disconnected():
                        return
                    yield ": keep-alive\n\n"
                    continue
                if seq <= newest or (wanted and alert.severity not in wanted):
                    continue
                yield sse_frame(seq, alert)
                sent += 1
                if limit is not None and sent >= limit:
                    return

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.post(
    "/alerts/{alert_id}/ack",
    response_model=AckAccepted,
    status_code=202,
    responses={
        400: {"description": "The body is not valid JSON."},
        404: {"description": "No open or recent alert with this id."},
        503: {"description": "The acks topic is unavailable; retry."},
    },
)
async def ack_alert(
    ctx: Ctx,
    alert_id: Annotated[str, Path(min_length=1, max_length=200)],
    body: AckRequest,
) -> AckAccepted:
    """Publish an acknowledgement to the acks topic, keyed by the alert's patient."""
    found = ctx.feed.find(alert_id)
    patient_id = found.patient_id if found else None
    if patient_id is None:
        patient_id = next(
            (a.patient_id for a in await _open_alerts(ctx) if a.alert_id == alert_id), None
        )
    if patient_id is None:
        raise HTTPException(404, "no open or recent alert with this id")
    ack = AlertAck(alert_id=alert_id, by=body.by, at=datetime.now(tz=UTC))
    try:
        await ctx.publisher.publish(patient_id, ack)
    except Exception as exc:
        raise HTTPException(503, "acknowledgement could not be published; retry") from exc
    return AckAccepted(
        alert_id=alert_id,
        patient_id=patient_id,
        by=body.by,
        at=ack.at,
        topic=ctx.settings.topic_alert_acks,
    )
