"""Alert lifecycle: one alert per episode of a rule, never a flood of repeats.

An episode *opens* when its rule starts firing, *escalates* when its severity
rises, *reminds* while it stays open, unacknowledged and of high severity, and
*resolves* once the rule has been clear for ``hold_s``; a ``cooldown_s``
follows in which the rule does not re-open. ``alert_id`` is a UUIDv5 of
(patient, rule, episode) so a subscriber can drop a redelivered alert: the
pair (``alert_id``, ``status``) is unique except for reminders, which carry
the same ``alert_id`` and a ``details.reminder`` counter.
"""

from __future__ import annotations

import functools
import hashlib
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from schemas.alert import Alert, AlertSeverity, AlertStatus
from twin.config import TwinConfig
from twin.state import AlertEpisode, TwinState

__all__ = ["SEVERITY_RANK", "acknowledge", "alert_id", "due_reminders", "update_alert"]

_NAMESPACE = uuid.UUID("6f2a4f0e-4c1e-5a7b-9a53-2b1d7c0e9f11")
_NAMESPACE_BYTES = _NAMESPACE.bytes
# RFC 4122 version 5 and variant bits, as uuid.UUID(version=5) sets them.
_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_SET = (5 << 76) | (0x8000 << 48)

SEVERITY_RANK: dict[str, int] = {"info": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}

# Reminder intervals by severity, from the NEWS2 chart's minimum monitoring
# frequency (RCP 2017, chart 4): high -> continuous (we remind every
# ``continuous_reminder_s``), critical likewise. Lower severities do not remind.
_REMINDS = frozenset({"high", "critical"})


@functools.lru_cache(maxsize=4096)  # an open episode's reminders and acks ask again
def alert_id(patient_id: str, rule: str, episode: int) -> str:
    """Deterministic id of one episode of one rule for one patient.

    >>> alert_id("p-1", "news2.red_score", 1) == alert_id("p-1", "news2.red_score", 1)
    True
    >>> alert_id("p-1", "news2.red_score", 1) == alert_id("p-1", "news2.red_score", 2)
    False
    """
    return _uuid5(f"{patient_id}|{rule}|{episode}")


def _uuid5(name: str) -> str:
    """``str(uuid.uuid5(_NAMESPACE, name))`` without a ``UUID`` object.

    Every new episode misses alert_id's cache; on CPython 3.11 uuid5 cost 10.0 us
    a call (most of it ``UUID.__init__`` and ``__str__``), this 3.6 us (a busy
    2-core machine; interleaved, best of 15).

    >>> _uuid5("p-1|news2|1") == str(uuid.uuid5(_NAMESPACE, "p-1|news2|1"))
    True
    """
    # What uuid5 hashes (an id, not a secret: usedforsecurity=False, as uuid passes).
    digest = hashlib.sha1(_NAMESPACE_BYTES + name.encode(), usedforsecurity=False).digest()
    h = f"{int.from_bytes(digest[:16]) & _CLEAR | _SET:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


Details = dict[str, Any] | Callable[[], dict[str, Any]]
"""An alert's details, or a function that builds them: most updates send no alert,
and building details (rounding, copying) on every reading would cost more than
the rule itself."""


def _details(details: Details) -> dict[str, Any]:
    return details() if callable(details) else details


def _ts(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


def _alert(
    state: TwinState,
    ep: AlertEpisode,
    status: AlertStatus,
    severity: str,
    at: float,
    now: float,
    details: Details,
) -> Alert:
    ep.last_notified_at = at
    return Alert(
        alert_id=alert_id(state.patient_id, ep.rule, ep.episode),
        patient_id=state.patient_id,
        kind=ep.kind,
        severity=severity,  # type: ignore[arg-type]
        status=status,
        rule=ep.rule,
        observed_at=_ts(at),
        emitted_at=_ts(now),
        details=_details(details),
    )


def update_alert(
    state: TwinState,
    cfg: TwinConfig,
    *,
    rule: str,
    kind: str,
    firing: bool,
    severity: AlertSeverity,
    at: float,
    now: float,
    details: Details,
    hold_s: float | None = None,
) -> Alert | None:
    """Advance ``rule``'s episode on ``state`` at event time ``at``; return the alert to send.

    >>> s, cfg = TwinState("p1"), TwinConfig(hold_s=600, cooldown_s=600)
    >>> def step(firing, at, sev="medium"):
    ...     a = update_alert(s, cfg, rule="r", kind="k", firing=firing, severity=sev,
    ...                      at=at, now=at, details={})
    ...     return a and a.status
    >>> [step(True, 0), step(True, 60), step(True, 120, "high"), step(False, 180),
    ...  step(False, 780), step(True, 900), step(True, 1500)]
    ['open', None, 'escalated', None, 'resolved', None, 'open']
    """
    ep = state.open_alerts.get(rule)
    if firing:
        if ep is None:
            until = state.cooldown_until.get(rule)
            if until is not None:
                if at < until:
                    return None
                del state.cooldown_until[rule]  # expired: keep the twin small
            number = state.episodes.get(rule, 0) + 1
            state.episodes[rule] = number
            ep = AlertEpisode(rule, number, kind, severity, at, at)
            state.open_alerts[rule] = ep
            return _alert(state, ep, "open", severity, at, now, details)
        ep.clear_since = None
        ep.last_firing_at = max(ep.last_firing_at, at)
        if SEVERITY_RANK[severity] > SEVERITY_RANK[ep.severity]:
            ep.severity = severity
            return _alert(state, ep, "escalated", severity, at, now, details)
        return None
    if ep is None:
        return None
    if ep.clear_since is None:
        ep.clear_since = at
    if at - ep.clear_since < (cfg.hold_s if hold_s is None else hold_s):
        return None
    del state.open_alerts[rule]
    state.cooldown_until[rule] = at + cfg.cooldown_s
    resolved = {**_details(details), "all_clear": True, "was": ep.severity}
    return _alert(state, ep, "resolved", "info", at, now, resolved)


def due_reminders(state: TwinState, cfg: TwinConfig, *, at: float, now: float) -> list[Alert]:
    """Reminders for open, unacknowledged high-severity episodes whose interval has passed."""
    out = []
    for ep in state.open_alerts.values():
        if ep.severity not in _REMINDS or ep.clear_since is not None:
            continue
        if ep.acked_until is not None and at < ep.acked_until:
            continue
        if at - ep.last_notified_at >= cfg.continuous_reminder_s:
            # The promised ``details.reminder`` counter, without extra state: reminder
            # intervals since the open. Reminders are an interval or more apart, so it
            # grows with each one and (alert_id, "reminder", counter) stays unique.
            details = {
                "open_minutes": round((at - ep.opened_at) / 60),
                "reminder": int((at - ep.opened_at) // cfg.continuous_reminder_s),
            }
            out.append(_alert(state, ep, "reminder", ep.severity, at, now, details))
    return out


def acknowledge(state: TwinState, cfg: TwinConfig, alert: str, at: float) -> bool:
    """Silence reminders of the open episode with id ``alert``; False if none matches."""
    for ep in state.open_alerts.values():
        if alert_id(state.patient_id, ep.rule, ep.episode) == alert:
            ep.acked_until = at + cfg.ack_silence_s
            return True
    return False
