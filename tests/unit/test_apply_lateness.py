"""Lateness is judged per kind: a lab consumed ahead of vitals must not silence them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from schemas.labs import LabEvent
from schemas.vitals import VitalsEvent
from twin.apply import apply_lab, apply_vitals
from twin.config import TwinConfig
from twin.state import TwinState

pytestmark = pytest.mark.unit

T0 = 1_800_000_000.0


def _iso(t: float) -> datetime:
    return datetime.fromtimestamp(t, tz=UTC)


def test_vitals_behind_a_newer_lab_still_alert() -> None:
    cfg = TwinConfig(lateness_s=3600)
    twin = TwinState("p1")
    lab = LabEvent(
        event_id="l1",
        patient_id="p1",
        observed_at=_iso(T0 + 6 * 3600),
        analyte="sodium",
        value=140,
        unit="mmol/L",
    )
    assert apply_lab(twin, lab, cfg, now=T0) == []
    # Vitals two hours older than that lab: earlier than the twin's newest event by
    # more than the lateness bound, but the twin's first vitals, so not late.
    vitals = VitalsEvent(
        event_id="v1",
        patient_id="p1",
        observed_at=_iso(T0 + 4 * 3600),
        spo2=85,
        heart_rate=80,
        respiratory_rate=18,
    )
    alerts = apply_vitals(twin, vitals, cfg, now=T0)
    assert alerts is not None and [a.rule for a in alerts if a.rule == "news2"] == ["news2"]


def test_vitals_late_by_the_vitals_clock_raise_nothing() -> None:
    cfg = TwinConfig(lateness_s=3600)
    twin = TwinState("p1")
    fresh = VitalsEvent(
        event_id="v2", patient_id="p1", observed_at=_iso(T0 + 4 * 3600), heart_rate=80
    )
    apply_vitals(twin, fresh, cfg, now=T0)
    old = VitalsEvent(event_id="v1", patient_id="p1", observed_at=_iso(T0), spo2=85)
    assert apply_vitals(twin, old, cfg, now=T0) == []
    assert twin.latest["spo2"].value == 85  # recorded all the same
