"""Alerts on ``twin.alerts``: what the twin tells the people who must act."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, Field

from schemas.base import PatientId, WireModel

__all__ = ["Alert", "AlertSeverity", "AlertStatus"]

AlertSeverity = Literal["info", "low", "medium", "high", "critical"]
AlertStatus = Literal["open", "escalated", "reminder", "resolved"]


class Alert(WireModel):
    """One alert state change.

    ``alert_id`` is deterministic for (patient, rule, episode): a subscriber
    that sees the same ``alert_id`` with the same ``status`` twice may drop the
    second (delivery is at-least-once).
    """

    alert_id: str = Field(min_length=1, max_length=200)
    patient_id: PatientId
    kind: str = Field(min_length=1, max_length=64, description="e.g. deterioration, critical_lab")
    severity: AlertSeverity
    status: AlertStatus
    rule: str = Field(min_length=1, max_length=200, description="Rule id and its source.")
    observed_at: AwareDatetime = Field(description="Event time of the observation that fired.")
    emitted_at: datetime = Field(description="Wall-clock time the worker emitted it.")
    details: dict[str, Any] = Field(default_factory=dict)
