"""Alerts from what a twin has learned about its own patient.

* ``baseline.<vital>`` (``baseline_deviation``): a vital has stayed beyond
  k standard deviations of the patient's own baseline for n readings.
* ``change.<vital>`` (``sustained_change``): a level shift that stayed
  shifted (a confirmed PageHinkley change); resolves after the hold time.
* ``news2.predicted`` (``predicted_deterioration``): the NEWS2 band projected
  from the per-vital forecasts at +30 or +60 min is medium or high while the
  current band is lower; ``lead_time_minutes`` says which horizon.
"""

from __future__ import annotations

import math
from functools import partial
from typing import Any

from schemas.alert import Alert
from twin.alerting import update_alert
from twin.config import TwinConfig
from twin.learning.baseline import BaselineParams
from twin.learning.codec import VitalSignals
from twin.learning.drift import SustainedChange
from twin.learning.forecast import overlay_forecasts
from twin.learning.vitals import VITAL_NAMES
from twin.scores import News2Result, news2
from twin.state import TwinState

__all__ = ["PREDICTED_RULE", "learned_alerts"]

PREDICTED_RULE = "news2.predicted"
_BAND_RANK = {"low": 0, "low-medium": 1, "medium": 2, "high": 3}
_HORIZONS_S = (1800, 3600)
_BASELINE_RULES = {v: f"baseline.{v}" for v in VITAL_NAMES}
_CHANGE_RULES = {v: f"change.{v}" for v in VITAL_NAMES}


def learned_alerts(
    state: TwinState, cfg: TwinConfig, at: float, now: float, current: News2Result
) -> list[Alert]:
    """Alerts from the newest readings' learned signals (``state.signals``);
    ``current`` is the NEWS2 the twin scores now."""
    out: list[Alert | None] = []
    params = state.patient_models().config.baseline
    open_alerts = state.open_alerts
    for sig in state.signals:
        vital = sig.vital
        # A rule that is not firing and has no open episode changes nothing
        # (update_alert would return None): most readings skip both calls.
        rule = _BASELINE_RULES.get(vital) or f"baseline.{vital}"
        if sig.deviating or rule in open_alerts:
            out.append(
                update_alert(
                    state,
                    cfg,
                    rule=rule,
                    kind="baseline_deviation",
                    firing=sig.deviating,
                    severity="low",
                    at=at,
                    now=now,
                    details=partial(_baseline_details, sig, params),
                )
            )
        change = sig.sustained_change
        rule = _CHANGE_RULES.get(vital) or f"change.{vital}"
        if change is not None or rule in open_alerts:
            out.append(
                update_alert(
                    state,
                    cfg,
                    rule=rule,
                    kind="sustained_change",
                    firing=change is not None,
                    severity="low",
                    at=at,
                    now=now,
                    details={} if change is None else partial(_change_details, vital, change),
                )
            )
    if state.signals and current.band != "high":
        out.append(_predicted(state, cfg, at, now, current))
    elif state.signals and PREDICTED_RULE in state.open_alerts:
        # Already at the highest band: nothing left to predict; let an open
        # prediction resolve on its hold time.
        out.append(
            update_alert(
                state,
                cfg,
                rule=PREDICTED_RULE,
                kind="predicted_deterioration",
                firing=False,
                severity="medium",
                at=at,
                now=now,
                details={},
            )
        )
    return [a for a in out if a is not None]


def _baseline_details(sig: VitalSignals, params: BaselineParams) -> dict[str, Any]:
    return {
        "vital": sig.vital,
        "value": sig.value,
        "z": None if sig.z is None else round(sig.z, 2),
        "baseline_mean": round(sig.mean, 2),
        "baseline_sd": round(sig.std, 2),
        "k_sd": params.deviation_k,
        "readings": params.deviation_n,
        "source": "personal baseline: exponentially weighted mean/variance",
    }


def _change_details(vital: str, change: SustainedChange) -> dict[str, Any]:
    return {
        "vital": vital,
        "direction": change.direction,
        "magnitude": round(change.magnitude, 2),
        "level": round(change.level, 2),
        "previous_level": round(change.previous_level, 2),
        "onset_at": change.onset_at,
        "source": "PageHinkley change detector, confirmed over time",
    }


def _predicted(
    state: TwinState, cfg: TwinConfig, at: float, now: float, current: News2Result
) -> Alert | None:
    # Forecasts of the vitals just observed; the others carry their latest value.
    forecasts = {sig.vital: sig.forecast for sig in state.signals if sig.forecast}
    # Without forecasts the projection is the current NEWS2 itself (the same
    # fresh values), which cannot rank above itself: no need to score it.
    details = _projected_rise(state, cfg, at, current, forecasts) if forecasts else None
    if details is None and PREDICTED_RULE not in state.open_alerts:
        return None  # not firing and nothing open: update_alert would change nothing
    return update_alert(
        state,
        cfg,
        rule=PREDICTED_RULE,
        kind="predicted_deterioration",
        firing=details is not None,
        severity="medium",
        at=at,
        now=now,
        details={} if details is None else details,
    )


def _projected_rise(
    state: TwinState,
    cfg: TwinConfig,
    at: float,
    current: News2Result,
    forecasts: dict[str, dict[int, float]],
) -> dict[str, Any] | None:
    """The alert details of the first horizon whose projected band is medium or
    high and above the current one; None when no horizon's is."""
    since = at - cfg.fresh_s
    number = state.number
    oxygen = state.value("on_oxygen", fresh_since=since)
    level = state.value("consciousness", fresh_since=since)
    # news2's arguments now, as projected_news2_inputs carries them (in its order,
    # that of the details' projected_values), built once for both horizons from
    # the twin's fresh values.
    carried: dict[str, Any] = {
        "respiratory_rate": number("respiratory_rate", fresh_since=since),
        "spo2": number("spo2", fresh_since=since),
        "on_oxygen": oxygen if isinstance(oxygen, bool) else None,
        "systolic_bp": number("systolic_bp", fresh_since=since),
        "heart_rate": number("heart_rate", fresh_since=since),
        "consciousness": level if isinstance(level, str) else None,
        "temperature_c": number("temperature_c", fresh_since=since),
        "spo2_scale": state.profile.spo2_scale if state.profile else 1,
    }
    for horizon in _HORIZONS_S:
        projected = news2(**overlay_forecasts(carried, forecasts, horizon, _at_chart_precision))
        if (
            projected.band in ("medium", "high")
            and _BAND_RANK[projected.band] > _BAND_RANK[current.band]
        ):
            # The forecasts themselves, for the details.
            inputs = overlay_forecasts(carried, forecasts, horizon)
            return {
                "lead_time_minutes": horizon // 60,
                "projected_news2": projected.total,
                "projected_band": projected.band,
                "projected_values": {
                    k: round(v, 1) for k, v in inputs.items() if isinstance(v, float)
                },
                "current_news2": current.total,
                "current_band": current.band,
                "source": "per-vital Holt forecasts scored with RCP NEWS2 (2017)",
            }
    return None


def _at_chart_precision(vital: str, value: float) -> float:
    """A forecast ``value`` rounded half-up as NEWS2 bands it (``twin.scores``: to
    a whole number, as an int; temperature to 0.1 as the float prints), so it
    scores alike.

    Forecasts are new floats every reading: unrounded, each missed the scores'
    caches (temperature's decimal rounding costs 3 us) and evicted the device
    values from them. ``value`` is finite, positive and at most the vital's
    upper bound (SpO2 100), as :class:`~twin.learning.forecast.VitalForecaster`
    clamps it. Temperature is rounded in binary: ``value * 10`` is within 1e-13
    of the printed decimal's, so away from a half it rounds alike, and a value
    that close to a half is left for ``news2`` to round.

    >>> _at_chart_precision("heart_rate", 117.5), _at_chart_precision("temperature_c", 38.06)
    (118, 38.1)
    """
    if vital == "temperature_c":
        tenths = value * 10.0
        whole = math.floor(tenths)
        if abs(tenths - whole - 0.5) < 1e-9:
            return value
        return (whole + 1 if tenths - whole > 0.5 else whole) / 10
    whole = math.floor(value)
    return whole + 1 if value - whole >= 0.5 else whole
