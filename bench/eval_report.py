"""Turn what the evaluation read back into figures: AUROCs, alert rates and
predicted deterioration. Pure over its inputs (stays, alerts)."""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bench.eval_metrics import discrimination, roc_curve

__all__ = [
    "CITATION",
    "Stay",
    "alert_rates",
    "dedupe_alerts",
    "discrimination_report",
    "patient_days",
    "predicted_deterioration",
]

CITATION = (
    "PhysioNet/CinC Challenge 2012, set A: Silva I, Moody G, Scott DJ, Celi LA, Mark RG. "
    "Predicting in-hospital mortality of ICU patients: the PhysioNet/Computing in Cardiology "
    "Challenge 2012. Comput Cardiol 2012;39:245-248. PhysioNet: Goldberger AL et al., "
    "Circulation 2000;101(23):e215-e220. ODC-By 1.0."
)
NEWS2_ALERT_RULE = "news2"
PREDICTED_RULE = "news2.predicted"
STATUSES = ("open", "escalated", "reminder", "resolved")


@dataclass(frozen=True, slots=True)
class Stay:
    """One replayed stay: its order of admission, its labels, and its twin's scores."""

    index: int
    record_id: int
    patient_id: str
    death: int
    saps1: float | None  # None: -1 in Outcomes-a.txt (unknown)
    outcome_at: float | None  # event time of the outcome message
    news2_max: int | None
    risk: float | None
    risk_at: float | None
    newest_event_at: float | None
    first_event_at: float | None


def _at(alert: Mapping[str, Any]) -> float:
    return datetime.fromisoformat(alert["observed_at"]).timestamp()


def dedupe_alerts(alerts: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Drop at-least-once repeats: same alert, status and event time.

    >>> a = {"alert_id": "x", "status": "open", "observed_at": "2026-01-01T00:00:00+00:00"}
    >>> len(dedupe_alerts([a, dict(a), {**a, "status": "resolved"}]))
    2
    """
    seen: set[tuple[str, str, str]] = set()
    out = []
    for alert in alerts:
        key = (alert["alert_id"], alert["status"], alert["observed_at"])
        if key not in seen:
            seen.add(key)
            out.append(alert)
    return out


def discrimination_report(stays: Sequence[Stay], resamples: int = 1000) -> dict[str, Any]:
    """AUROC of in-hospital death for max NEWS2, SAPS-I and the online risk, each on the
    stays where it exists, on their common stays, and for the risk on the later half."""

    def score(name: str, stay: Stay) -> float | None:
        value = {"max_news2": stay.news2_max, "saps1": stay.saps1, "online_risk": stay.risk}[name]
        return None if value is None else float(value)

    names = ("max_news2", "saps1", "online_risk")
    detail: dict[str, Any] = {}
    curves: dict[str, tuple[list[float], list[float]]] = {}
    for name in names:
        have = [(s, v) for s in stays if (v := score(name, s)) is not None]
        d = discrimination([v for _, v in have], [s.death for s, _ in have], resamples=resamples)
        detail[name] = d.as_dict() | {"excluded": len(stays) - len(have)}
        if d.auroc is not None:
            curves[name] = roc_curve([v for _, v in have], [s.death for s, _ in have])
    later = [s for s in stays if s.index >= len(stays) // 2 and s.risk is not None]
    d = discrimination(
        [s.risk or 0.0 for s in later], [s.death for s in later], resamples=resamples
    )
    detail["online_risk_second_half"] = d.as_dict() | {
        "stays": f"admission order {len(stays) // 2 + 1}..{len(stays)}"
    }
    if d.auroc is not None:
        curves["online_risk_second_half"] = roc_curve(
            [s.risk or 0.0 for s in later], [s.death for s in later]
        )
    common = [s for s in stays if all(score(n, s) is not None for n in names)]
    labels = [s.death for s in common]
    detail["common_stays"] = {
        "n": len(common),
        "positives": sum(labels),
        "auroc": {
            n: discrimination([score(n, s) or 0.0 for s in common], labels, resamples=0).auroc
            for n in names
        },
    }
    auroc = {n: detail[n]["auroc"] for n in (*names, "online_risk_second_half")}
    return {"auroc": auroc, "auroc_detail": detail, "roc_curves": curves}


def patient_days(stays: Sequence[Stay]) -> float:
    """Observed patient-days: each stay's first to newest event."""
    seconds = sum(
        s.newest_event_at - s.first_event_at
        for s in stays
        if s.newest_event_at is not None and s.first_event_at is not None
    )
    return seconds / 86400.0


def alert_rates(alerts: Sequence[Mapping[str, Any]], days: float) -> dict[str, Any]:
    """Alerts per observed patient-day, by kind and status (and the raw counts)."""
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for a in alerts:
        counts[a["kind"]][a["status"]] += 1
    rates = {
        kind: {st: round(c[st] / days, 3) if days else None for st in STATUSES}
        for kind, c in sorted(counts.items())
    }
    opened = sum(c["open"] for c in counts.values())
    return {
        "per_patient_day": rates,
        "counts": {kind: dict(c) for kind, c in sorted(counts.items())},
        "open_all_kinds_per_patient_day": round(opened / days, 3) if days else None,
    }


def predicted_deterioration(
    alerts: Sequence[Mapping[str, Any]], stays: Sequence[Stay]
) -> dict[str, Any]:
    """How often a ``news2.predicted`` alert was followed by NEWS2 >= 5 in the same stay.

    NEWS2 >= 5 is read from ``news2`` alerts (open or escalated) whose
    ``details.news2_total`` is 5 or more. Those are sent only when the alert
    opens or its severity rises, and severity "medium" covers both the
    low-medium (a single 3) and medium (5-6) bands: a rise from 3-4 to 5-6
    inside one open episode sends nothing. The share is therefore a lower
    bound; ``share_news2_max_ge5`` (any time in the stay, from the twin) is an
    upper bound.
    """
    predictions: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    high_news: dict[str, list[float]] = defaultdict(list)
    for a in alerts:
        pid = a["patient_id"]
        if a["rule"] == PREDICTED_RULE and a["status"] == "open":
            predictions[pid].append(a)
        elif (
            a["rule"] == NEWS2_ALERT_RULE
            and a["status"] in ("open", "escalated")
            and (a.get("details") or {}).get("news2_total", 0) >= 5
        ):
            high_news[pid].append(_at(a))
    by_pid = {s.patient_id: s for s in stays}

    def follow_up(pid: str, start: float) -> float | None:
        later = [t for t in high_news.get(pid, ()) if t > start]
        return min(later) - start if later else None

    predicted = [pid for pid in predictions if pid in by_pid]
    leads_seen: list[float] = []
    claimed: list[float] = []
    hits = 0
    for pid in predicted:
        first = min(predictions[pid], key=_at)
        claimed.append(float(first["details"].get("lead_time_minutes", 0)))
        gap = follow_up(pid, _at(first))
        if gap is not None:
            hits += 1
            leads_seen.append(gap / 60.0)
    # Predictions made while the current NEWS2 was below 5: the non-trivial ones.
    below = [
        (pid, a)
        for pid in predicted
        for a in predictions[pid]
        if (a.get("details") or {}).get("current_news2", 99) < 5
    ]
    below_hits = [
        gap
        for pid, a in below
        if (gap := follow_up(pid, _at(a))) is not None
        and gap <= 60.0 * float(a["details"].get("lead_time_minutes", 0))
    ]
    unpredicted = [s for s in stays if s.patient_id not in predictions]
    base = sum(1 for s in unpredicted if high_news.get(s.patient_id))
    upper = sum(1 for pid in predicted if (by_pid[pid].news2_max or 0) >= 5)
    n = len(predicted)
    return {
        "stays_with_prediction": n,
        "prediction_episodes": sum(len(predictions[p]) for p in predicted),
        "stays_then_news2_ge5": hits,
        "share_then_news2_ge5": round(hits / n, 4) if n else None,
        "median_lead_time_observed_minutes": (
            round(statistics.median(leads_seen), 1) if leads_seen else None
        ),
        "median_lead_time_claimed_minutes": statistics.median(claimed) if claimed else None,
        "share_news2_max_ge5": round(upper / n, 4) if n else None,
        "stays_without_prediction": len(unpredicted),
        "share_without_prediction_with_news2_ge5_alert": (
            round(base / len(unpredicted), 4) if unpredicted else None
        ),
        "episodes_from_news2_below5": len(below),
        "share_of_those_reaching_ge5_within_claimed_lead": (
            round(len(below_hits) / len(below), 4) if below else None
        ),
        "note": (predicted_deterioration.__doc__ or "").split("\n\n")[1].strip().replace("\n", " "),
    }
