"""How an event changes a twin: pure functions from (state, event) to alerts."""

from __future__ import annotations

from schemas.alert import Alert
from schemas.vitals import VITAL_FIELDS, VitalsEvent
from twin.alerting import update_alert
from twin.scores import news2
from twin.state import Observation, TwinState

__all__ = ["RED_SCORE_RULE", "apply_vitals"]

RED_SCORE_RULE = "news2.red_score"
"""Any single NEWS2 parameter scoring 3 (RCP NEWS2 2017: urgent ward-based response)."""


def apply_vitals(
    state: TwinState,
    event: VitalsEvent,
    *,
    now: float,
    lateness_s: float = 3600.0,
    fresh_s: float = 3600.0,
) -> list[Alert]:
    """Apply one vitals event to ``state`` (in place) and return the alerts it raises.

    Latest values are kept by event time, not arrival: an older reading never
    overwrites a newer one. An event older than ``lateness_s`` behind the
    twin's newest vitals is recorded but raises no alert.
    """
    at = event.observed_at.timestamp()
    for name in VITAL_FIELDS:
        value = getattr(event, name)
        if value is None:
            continue
        current = state.latest.get(name)
        if current is None or current.at <= at:
            state.latest[name] = Observation(value, at, "bedside")
    state.events_applied += 1
    newest = at if state.last_vitals_at is None else max(state.last_vitals_at, at)
    state.last_vitals_at = newest
    if at < newest - lateness_s:
        return []
    return _news2_alerts(state, newest, now=now, fresh_s=fresh_s)


def _news2_alerts(state: TwinState, at: float, *, now: float, fresh_s: float) -> list[Alert]:
    since = at - fresh_s

    def num(name: str) -> float | None:
        v = state.value(name, fresh_since=since)
        return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None

    consciousness = state.value("consciousness", fresh_since=since)
    on_oxygen = state.value("on_oxygen", fresh_since=since)
    result = news2(
        respiratory_rate=num("respiratory_rate"),
        spo2=num("spo2"),
        on_oxygen=on_oxygen if isinstance(on_oxygen, bool) else None,
        systolic_bp=num("systolic_bp"),
        heart_rate=num("heart_rate"),
        consciousness=consciousness if isinstance(consciousness, str) else None,
        temperature_c=num("temperature_c"),
    )
    red = sorted(k for k, v in result.subscores.items() if v == 3)
    alert = update_alert(
        state,
        rule=RED_SCORE_RULE,
        kind="deterioration",
        firing=bool(red),
        severity="medium",
        observed_at=at,
        now=now,
        details={
            "parameters_scoring_3": red,
            "news2_total": result.total,
            "news2_partial": result.partial,
            "subscores": dict(result.subscores),
            "source": "RCP NEWS2 (2017): a score of 3 in any single parameter",
        },
    )
    return [alert] if alert is not None else []
