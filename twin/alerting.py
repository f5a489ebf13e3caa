"""Alert lifecycle: one alert per episode of a rule, never a flood of repeats.

An episode opens when its rule starts firing, escalates when its severity
rises, and resolves when the rule stops firing. ``alert_id`` is a UUIDv5 of
(patient, rule, episode) so a subscriber can drop a redelivered alert.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from schemas.alert import Alert, AlertSeverity
from twin.state import AlertEpisode, TwinState

__all__ = ["SEVERITY_RANK", "alert_id", "update_alert"]

_NAMESPACE = uuid.UUID("6f2a4f0e-4c1e-5a7b-9a53-2b1d7c0e9f11")

SEVERITY_RANK: dict[str, int] = {"info": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}


def alert_id(patient_id: str, rule: str, episode: int) -> str:
    """Deterministic id of one episode of one rule for one patient.

    >>> alert_id("p-1", "news2.red_score", 1) == alert_id("p-1", "news2.red_score", 1)
    True
    >>> alert_id("p-1", "news2.red_score", 1) == alert_id("p-1", "news2.red_score", 2)
    False
    """
    return str(uuid.uuid5(_NAMESPACE, f"{patient_id}|{rule}|{episode}"))


def _ts(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


def update_alert(
    state: TwinState,
    *,
    rule: str,
    kind: str,
    firing: bool,
    severity: AlertSeverity,
    observed_at: float,
    now: float,
    details: dict[str, Any],
) -> Alert | None:
    """Advance ``rule``'s episode on ``state`` and return the alert to send, if any."""
    episode = state.open_alerts.get(rule)
    status: str
    if firing and episode is None:
        number = state.episodes.get(rule, 0) + 1
        state.episodes[rule] = number
        episode = AlertEpisode(rule, number, severity, observed_at, observed_at)
        state.open_alerts[rule] = episode
        status = "open"
    elif firing and episode is not None:
        episode.last_firing_at = max(episode.last_firing_at, observed_at)
        if SEVERITY_RANK[severity] <= SEVERITY_RANK[episode.severity]:
            return None
        episode.severity = severity
        status = "escalated"
    elif episode is not None:
        del state.open_alerts[rule]
        severity = "info"
        status = "resolved"
    else:
        return None
    return Alert(
        alert_id=alert_id(state.patient_id, rule, episode.episode),
        patient_id=state.patient_id,
        kind=kind,
        severity=severity,
        status=status,  # type: ignore[arg-type]
        rule=rule,
        observed_at=_ts(observed_at),
        emitted_at=_ts(now),
        details=details,
    )
