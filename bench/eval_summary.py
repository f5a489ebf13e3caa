"""Everything one evaluation run gathered, assembled into the report written to
``evaluation.json`` (the figures themselves come from :mod:`bench.eval_report`)."""

from __future__ import annotations

import contextlib
import os
import platform
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.eval_collect import StoredTwin
from bench.eval_feed import FeedLog
from bench.eval_metrics import quantiles
from bench.eval_report import (
    CITATION,
    Stay,
    alert_rates,
    dedupe_alerts,
    discrimination_report,
    patient_days,
    predicted_deterioration,
)
from bench.eval_stays import StayTap
from stream.feeds.physionet import ReplayStats
from stream.settings import Settings
from twin.learning.risk import RiskModel

__all__ = ["RunResult", "build_report", "code_version", "prequential_check", "stays_from"]

REPO = Path(__file__).resolve().parents[1]


@dataclass
class RunResult:
    """What the run sent, what the worker did, and what was read back."""

    run_id: str
    data_dir: Path
    outcomes_path: Path
    outcomes: dict[int, dict[str, float]]
    stagger_minutes: float
    window_minutes: float
    settings: Settings
    tap: StayTap
    stats: ReplayStats
    log: FeedLog
    worker_cpu_s: float
    counters: dict[str, int]
    outbox_flushed: bool
    twins: dict[str, StoredTwin]
    alerts: list[dict[str, Any]]
    risk_model: RiskModel | None
    code_at_start: dict[str, Any]


def stays_from(run: RunResult) -> list[Stay]:
    """One :class:`Stay` per replayed stay, in admission order, joined to its twin."""
    out = []
    for index, (record_id, pid) in enumerate(run.tap.order):
        row = run.outcomes[record_id]
        stored = run.twins.get(pid)
        t = stored.twin if stored is not None else None
        saps = row.get("SAPS-I", -1.0)
        out.append(
            Stay(
                index=index,
                record_id=record_id,
                patient_id=pid,
                death=int(row["In-hospital_death"]),
                saps1=None if saps < 0 else saps,
                outcome_at=run.tap.outcome_at.get(pid),
                news2_max=t.news2_max if t else None,
                risk=t.risk if t else None,
                risk_at=t.risk_at if t else None,
                newest_event_at=t.newest_event_at if t else None,
                first_event_at=t.first_event_at if t else None,
            )
        )
    return out


def prequential_check(run: RunResult, stays: list[Stay], dead_lettered: int) -> dict[str, Any]:
    """Was every stay's risk scored before its outcome, and nothing applied after it?"""
    twins, tap = run.twins, run.tap
    risk_after = sum(
        1
        for s in stays
        if s.risk_at is not None and s.outcome_at is not None and s.risk_at > s.outcome_at
    )
    events_after = sum(
        1
        for s in stays
        if s.newest_event_at is not None
        and s.outcome_at is not None
        and s.newest_event_at > s.outcome_at
    )
    not_applied = {
        s.patient_id: tap.events.get(s.patient_id, 0) - twins[s.patient_id].twin.events_applied
        for s in stays
        if s.patient_id in twins
    }
    return {
        "risk_scored_after_outcome_time": risk_after,
        "events_after_outcome_time": events_after,
        "stays_with_events_sent_but_not_applied": sum(1 for n in not_applied.values() if n),
        "events_sent_but_not_applied": sum(not_applied.values()),
        "dead_lettered": dead_lettered,
        "stays_with_outcome_recorded_on_twin": sum(
            1 for s in stays if s.patient_id in twins and twins[s.patient_id].twin.outcomes
        ),
        "stays_never_risk_scored": sum(1 for s in stays if s.risk is None),
        "stays_risk_exactly_0_5_untrained": sum(1 for s in stays if s.risk == 0.5),
        "order_guarantee": (
            "outcomes are sent one window after the window holding the stay's last event, and"
            " a window is sent only once the worker has committed every earlier message: each"
            " outcome is applied after all of its stay's events, so the twin's risk is the last"
            " score before its own label was learned"
        ),
    }


def code_version() -> dict[str, Any]:
    """The commit measured, and the uncommitted files of the code the worker runs."""

    def git(*args: str) -> str | None:
        with contextlib.suppress(OSError, subprocess.CalledProcessError):
            done = subprocess.run(
                ["git", *args], cwd=REPO, capture_output=True, text=True, check=True
            )
            return done.stdout
        return None

    status = git("status", "--porcelain", "--", "stream", "twin", "agents", "schemas") or ""
    return {
        "commit": (git("rev-parse", "--short", "HEAD") or "").strip() or None,
        "uncommitted": [line.strip() for line in status.splitlines() if line.strip()],
    }


def _throughput(run: RunResult) -> dict[str, Any]:
    events = run.counters.get("consumed", 0)
    wall = run.log.finished - run.log.started
    cpu = run.worker_cpu_s
    return {
        "events": events,
        "worker_cpu_s": round(cpu, 1),
        "worker_cpu_us_per_event": round(cpu / events * 1e6, 1) if events else None,
        "events_per_s": round(events / wall, 1) if wall > 0 else None,
        "wall_s": round(wall, 1),
        "windows": run.log.windows,
        "note": (
            "worker CPU (user+system, all threads, from /proc) between its partitions being"
            " claimed and the last window consumed, divided by consumed records: the whole"
            " per-event cost (decode, twin core, river models, codec, Redis commit, Kafka),"
            " not the model update alone. events/s is over the feed's wall time, including"
            " the waits at each window boundary, on a shared 2-core machine that also runs"
            " Kafka, Redis, this feed and other engineers' jobs"
        ),
    }


def _setup(run: RunResult) -> dict[str, Any]:
    s = run.settings
    return {
        "stagger_minutes": run.stagger_minutes,
        "window_minutes": run.window_minutes,
        "admissions": "RecordID order, stay i admitted at 2026-01-01T00:00Z + i * stagger",
        "label_delay": (
            "each stay's outcome is sent at its last row and applied 0 to window minutes"
            " (event time) after it; the final risk of a stay is scored with the labels of"
            " the stays admitted about 48 h + up to one window earlier"
        ),
        "stale_after_minutes": s.stale_after_minutes,
        "stale_note": (
            "set very large: every stay ends after 48 h of record, and stale-data alerts"
            " on ended stays would be noise"
        ),
        "risk_every_minutes": s.risk_every_minutes,
        "vitals_fresh_minutes": s.vitals_fresh_minutes,
        "partitions": s.partitions,
        "worker": "one process, default settings otherwise",
    }


def _missing_data(run: RunResult, saps_unknown: int) -> dict[str, str]:
    fresh = run.settings.vitals_fresh_minutes
    return {
        "spo2": (
            "no pulse oximetry in this set: SpO2 is not scored (listed as missing) and SaO2"
            " is not substituted, so NEWS2 here is a lower bound of the full score (0-17"
            " instead of 0-20)"
        ),
        "stale_vitals": (
            f"a vital is scored only if charted in the last {fresh:g} minutes; older ones"
            " (often temperature, GCS) are missing, not carried forward"
        ),
        "consciousness": "GCS 15 -> A, 3-14 -> new confusion (scores 3): sedation scores 3",
        "oxygen": "MechVent 1 or FiO2 > 0.21 -> on oxygen; neither charted -> not scored",
        "saps1": f"{saps_unknown} stays with SAPS-I = -1 excluded from that AUROC only",
        "no_vitals": "stays without a scored NEWS2 or risk are excluded from that AUROC only",
        "implausible_values": (
            "passed through: the worker dead-letters the whole vitals event of that minute"
        ),
    }


def build_report(run: RunResult, resamples: int = 1000) -> dict[str, Any]:
    """The report (``roc_curves`` included: the plot takes them, the JSON does not)."""
    stays = stays_from(run)
    disc = discrimination_report(stays, resamples=resamples)
    alerts = dedupe_alerts(run.alerts)
    days = patient_days(stays)
    rates = alert_rates(alerts, days)
    redis_bytes = [t.redis_bytes for t in run.twins.values()]
    encoded = [t.encoded_bytes for t in run.twins.values()]
    counters = run.counters
    dead = {k.removeprefix("dead."): v for k, v in counters.items() if k.startswith("dead.")}
    model = run.risk_model
    return {
        "data": {
            "source": CITATION,
            "stays_dir": str(run.data_dir),
            "outcomes_file": str(run.outcomes_path),
        },
        "stays": len(stays),
        "deaths": sum(s.death for s in stays),
        "auroc": disc["auroc"],
        "auroc_detail": disc["auroc_detail"],
        "roc_curves": disc["roc_curves"],
        "alerts_per_patient_day": rates["per_patient_day"],
        "alert_counts": rates["counts"],
        "open_alerts_all_kinds_per_patient_day": rates["open_all_kinds_per_patient_day"],
        "patient_days": round(days, 1),
        "alert_messages": {
            "committed_by_worker": counters.get("alerts", 0),
            "read_from_topic": len(run.alerts),
            "after_dedupe": len(alerts),
        },
        "predicted_deterioration": predicted_deterioration(alerts, stays),
        "redis_bytes_per_twin": quantiles(redis_bytes),
        "encoded_twin_bytes": quantiles(encoded),
        "twins_over_2kb": {
            "redis": sum(1 for b in redis_bytes if b > 2048),
            "encoded": sum(1 for b in encoded if b > 2048),
            "of": len(run.twins),
        },
        "throughput": _throughput(run),
        "prequential_check": prequential_check(run, stays, sum(dead.values())),
        "risk_model_at_last_checkpoint": None
        if model is None
        else {
            "examples_learned": model.n_learned,
            "largest_weights": {k: round(v, 3) for k, v in list(model.weights().items())[:8]},
            "note": "checkpointed every 5 s of wall time: the last seconds may be missing",
        },
        "pipeline": {
            "sent": dict(run.log.sent),
            "counters": counters,
            "dead_letters": dead,
            "outbox_flushed": run.outbox_flushed,
            "twins_read": len(run.twins),
            "replay": run.stats.summary(),
            "implausible_values_passed_through": dict(run.stats.implausible),
        },
        "setup": _setup(run),
        "missing_data": _missing_data(run, sum(1 for s in stays if s.saps1 is None)),
        "run": {
            "id": run.run_id,
            "finished": datetime.now(UTC).isoformat(timespec="seconds"),
            "code": run.code_at_start,
            "code_changed_during_run": code_version() != run.code_at_start,
            "machine": f"{platform.machine()} {os.cpu_count()} cores; shared, noisy",
            "loadavg": [round(x, 2) for x in os.getloadavg()],
        },
    }
