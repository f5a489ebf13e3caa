"""Routes about twins: one twin, the ward list, the population rollup, what-if."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query

from stream.api.auth import require_token
from stream.api.context import ApiContext, get_context
from stream.api.models import (
    Band,
    PopulationView,
    TwinPage,
    TwinSummary,
    TwinView,
    VitalPoint,
    WhatIfRequest,
)
from stream.api.models import WhatIfResult as WhatIfView
from stream.api.population import TwinRollupRow, rollup
from stream.api.views import (
    band_of,
    current,
    iter_twins,
    predicted_deterioration,
    summary_of,
    twin_view,
    vital_series,
)
from stream.api.whatif import WhatIfError, what_if
from twin.codec import CodecError, decode_twin
from twin.state import TwinState

__all__ = ["ERRORS", "router"]

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "Missing or invalid bearer token."},
}
_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "No twin with this id."}}

router = APIRouter(dependencies=[Depends(require_token)], responses=ERRORS)

Ctx = Annotated[ApiContext, Depends(get_context)]
PatientPath = Annotated[str, Path(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:@-]+$")]


async def load_twin(ctx: ApiContext, patient_id: str) -> TwinState:
    """The stored twin, or 404."""
    raw = await ctx.store.get_twin(patient_id)
    if raw is None:
        raise HTTPException(404, "no twin with this id")
    try:
        return decode_twin(raw)
    except CodecError as exc:
        raise HTTPException(500, "stored twin cannot be decoded by this version") from exc


@router.get("/twins/{patient_id}", response_model=TwinView, responses=_NOT_FOUND)
async def get_twin(ctx: Ctx, patient_id: PatientPath) -> TwinView:
    """The twin's latest values, scores, windows, history, open alerts and profile."""
    return twin_view(await load_twin(ctx, patient_id), ctx.config)


@router.get(
    "/twins/{patient_id}/vitals", response_model=dict[str, list[VitalPoint]], responses=_NOT_FOUND
)
async def get_vitals(ctx: Ctx, patient_id: PatientPath) -> dict[str, list[VitalPoint]]:
    """Vitals over the last 6 h in the twin's window buckets (n, mean, min, max), oldest first."""
    return vital_series(await load_twin(ctx, patient_id))


def _sort_key(s: TwinSummary) -> tuple[int, float, str]:
    news = -1 if s.news2_total is None else s.news2_total
    risk = -1.0 if s.risk is None else s.risk
    return (-news, -risk, s.patient_id)


@router.get("/twins", response_model=TwinPage)
async def list_twins(
    ctx: Ctx,
    band: Annotated[Band | None, Query(description="Only this NEWS2 band.")] = None,
    ward: Annotated[str | None, Query(max_length=64)] = None,
    region: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(pattern=r"^[0-9]{1,9}$")] = None,
) -> TwinPage:
    """Twins sorted by NEWS2 (highest first), then learned risk, then id; paginated.

    Each request scans the store (see :func:`stream.api.views.iter_twins` for the
    scaling limit); the cursor is a position in that order, so a page may shift
    when twins change between requests.
    """
    rows: list[TwinSummary] = []
    async for state in iter_twins(ctx.store, ctx.settings.partitions):
        s = summary_of(state, ctx.config)
        if band is not None and s.band != band:
            continue
        if ward is not None and s.ward != ward:
            continue
        if region is not None and s.region != region:
            continue
        rows.append(s)
    rows.sort(key=_sort_key)
    start = int(cursor or 0)
    end = start + limit
    return TwinPage(
        items=rows[start:end], total=len(rows), next_cursor=str(end) if end < len(rows) else None
    )


@router.get("/population", response_model=PopulationView)
async def population(ctx: Ctx) -> PopulationView:
    """NEWS2 bands per ward and region, monitoring workload, predicted deteriorations.

    Counts below ``population_min_group`` are suppressed (reported as ``"<N"``).
    """
    rows = []
    async for state in iter_twins(ctx.store, ctx.settings.partitions):
        a = current(state, ctx.config)
        p = state.profile
        rows.append(
            TwinRollupRow(
                ward=p.ward if p else None,
                region=p.region if p else None,
                band=band_of(a),
                deteriorating_next_hour=predicted_deterioration(state),
                monitoring_interval_minutes=None
                if a is None
                else a.news2.monitoring_interval_minutes,
            )
        )
    return rollup(rows, ctx.min_group)


@router.post(
    "/twins/{patient_id}/what-if",
    response_model=WhatIfView,
    responses={
        **_NOT_FOUND,
        400: {"description": "The body is not valid JSON."},
        422: {"description": "Invalid hypothetical values."},
    },
)
async def post_what_if(ctx: Ctx, patient_id: PatientPath, body: WhatIfRequest) -> WhatIfView:
    """Scores before and after hypothetical vitals/labs, and the alerts they would raise.

    Applied to a copy of the twin with the worker's own functions; the stored twin is
    not changed.
    """
    state = await load_twin(ctx, patient_id)
    try:
        return what_if(state, body, ctx.config)
    except WhatIfError as exc:
        raise HTTPException(422, str(exc)) from exc
