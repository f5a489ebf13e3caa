"""Tunable knobs of the twin core, with clinically sourced defaults.

A plain frozen dataclass: the core never reads the environment. The stream
layer builds one from :class:`stream.settings.Settings`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["DEFAULT_CRITICAL_LABS", "CriticalRange", "TwinConfig"]


@dataclass(frozen=True, slots=True)
class CriticalRange:
    """Values at or beyond ``low`` / ``high`` (canonical units) are critical."""

    low: float | None
    high: float | None
    unit: str
    source: str


# Critical ("panic") values, canonical units. Defaults follow commonly used
# laboratory critical-value lists: potassium and sodium as in the Royal College
# of Pathologists' "The communication of critical and unexpected pathology
# results" (RCPath G150, 2017) alert thresholds; glucose per RCPath G150;
# lactate > 4 mmol/L as the Surviving Sepsis Campaign's hypoperfusion marker
# (Evans et al., Crit Care Med 2021); haemoglobin < 7 g/dL as the restrictive
# transfusion threshold (NICE NG24, 2015); pH < 7.2 / > 7.6 as the mean
# critical limits in Kost GJ, "Critical limits for urgent clinician
# notification at US medical centers", JAMA 1990;263(5):704-707.
DEFAULT_CRITICAL_LABS: dict[str, CriticalRange] = {
    "potassium": CriticalRange(2.5, 6.5, "mmol/L", "RCPath G150 (2017)"),
    "sodium": CriticalRange(120.0, 160.0, "mmol/L", "RCPath G150 (2017)"),
    "glucose": CriticalRange(2.5, 25.0, "mmol/L", "RCPath G150 (2017)"),
    "lactate": CriticalRange(None, 4.0, "mmol/L", "Surviving Sepsis Campaign 2021"),
    "haemoglobin": CriticalRange(7.0, None, "g/dL", "NICE NG24 (2015)"),
    "ph": CriticalRange(7.2, 7.6, "", "Kost, JAMA 1990"),
}


@dataclass(frozen=True, slots=True)
class TwinConfig:
    """Everything the pure core can be tuned by. Times in seconds."""

    lateness_s: float = 3600.0
    """Events older than this behind the twin's newest event raise no current alert."""
    fresh_s: float = 3600.0
    """Vitals older than this (event time) are not used for scores."""
    dedupe_window: int = 32
    """Per patient, how many recent event ids are remembered to drop duplicates."""
    hold_s: float = 900.0
    """A condition must be clear this long before its alert resolves."""
    cooldown_s: float = 900.0
    """After a resolve, the same rule does not re-open for this long."""
    ack_silence_s: float = 3600.0
    """An acknowledgement silences reminders for this long."""
    continuous_reminder_s: float = 900.0
    """Reminder interval where the chart says 'continuous monitoring'."""
    stale_after_s: float = 4 * 3600.0
    """No vitals for this long (stream event time) opens a stale-data alert."""
    history_len: int = 12
    """NEWS2 results kept per twin."""
    critical_labs: dict[str, CriticalRange] = field(
        default_factory=lambda: dict(DEFAULT_CRITICAL_LABS)
    )
    aki_abs_rise_mg_dl: float = 0.3
    """KDIGO 2012: creatinine rise >= 0.3 mg/dL within 48 h."""
    aki_rel_rise: float = 1.5
    """KDIGO 2012: creatinine >= 1.5 x the lowest value within the prior 7 days."""
    lactate_rise_window_s: float = 6 * 3600.0
    lactate_rise_floor: float = 2.0
