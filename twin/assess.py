"""Where a patient stands now: NEWS2, qSOFA and MEWS from the twin's fresh values."""

from __future__ import annotations

from dataclasses import dataclass

from twin.config import TwinConfig
from twin.scores import MewsResult, News2Result, QsofaResult, mews, news2, qsofa
from twin.state import TwinState

__all__ = ["Assessment", "assess"]


@dataclass(slots=True)
class Assessment:
    """Scores at event time ``at`` from values no older than ``fresh_s``.

    Read it, do not change it. Not ``frozen``, which costs ~90 ns per field in
    ``__init__`` (``object.__setattr__``): one is built per vitals set.
    """

    at: float
    news2: News2Result
    qsofa: QsofaResult
    mews: MewsResult | None


def assess(state: TwinState, cfg: TwinConfig, at: float, *, with_mews: bool = True) -> Assessment:
    """Score the twin at ``at``. Stale or missing parameters are reported missing, never 0.

    >>> from twin.state import Observation
    >>> s = TwinState("p1", latest={"respiratory_rate": Observation(26.0, at=0.0),
    ...                             "heart_rate": Observation(80.0, at=-7200.0)})
    >>> a = assess(s, TwinConfig(), at=0.0)
    >>> a.news2.subscores, "heart_rate" in a.news2.missing
    ({'respiratory_rate': 3}, True)
    """
    since = at - cfg.fresh_s
    num = state.number
    # Each fresh value read once (NEWS2, qSOFA and MEWS share most of them).
    rr = num("respiratory_rate", fresh_since=since)
    sbp = num("systolic_bp", fresh_since=since)
    hr = num("heart_rate", fresh_since=since)
    temp = num("temperature_c", fresh_since=since)
    consciousness = state.value("consciousness", fresh_since=since)
    on_oxygen = state.value("on_oxygen", fresh_since=since)
    level = consciousness if isinstance(consciousness, str) else None
    scale = state.profile.spo2_scale if state.profile else 1
    return Assessment(
        at=at,
        news2=news2(
            respiratory_rate=rr,
            spo2=num("spo2", fresh_since=since),
            on_oxygen=on_oxygen if isinstance(on_oxygen, bool) else None,
            systolic_bp=sbp,
            heart_rate=hr,
            consciousness=level,
            temperature_c=temp,
            spo2_scale=scale,
        ),
        qsofa=qsofa(respiratory_rate=rr, systolic_bp=sbp, consciousness=level),
        mews=mews(
            systolic_bp=sbp,
            heart_rate=hr,
            respiratory_rate=rr,
            temperature_c=temp,
            consciousness=level,
        )
        if with_mews
        else None,
    )
