"""The input of a fault run: a few thousand events for a few hundred patients.

Deterministic from a seed. Every patient gets a profile, then numbered events
(``<patient>:<seq>`` event ids) three minutes of event time apart on the
vitals, labs and wearables topics; some patients deteriorate (NEWS2 opens,
escalates, reminds, resolves) and some have critical labs, so alerts occur; a
few messages are malformed, implausible or in an unknown unit.

The feed is built so that the final twins and the alerts do not depend on how
a worker interleaves the *topics* of a partition (Faust fetches them in no
fixed order, and a replay after a fault interleaves them differently again):

* a patient's events span less than the lateness bound (60 min), so no event
  is ever "late" whichever topic is read first;
* vitals alerts read only vitals (profiles all keep SpO2 scale 1), lab alerts
  only labs, and patients with high-severity lab alerts get no vitals (vitals
  events remind every open high-severity episode, lab ones included);
* a patient has fewer events than the dedupe window (32), so duplicate
  detection never depends on which ids are still remembered;
* no FHIR (it would feed vitals from a second topic) and no acks.

Within one topic the order is Kafka's, which the oracle replays exactly.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

import orjson

from stream.settings import Settings

__all__ = ["Feed", "build_feed"]

STEP_S = 180.0
"""Event-time spacing of one patient's events (3 min)."""

NORMAL = {
    "heart_rate": 76,
    "respiratory_rate": 16,
    "spo2": 97,
    "systolic_bp": 124,
    "diastolic_bp": 78,
    "temperature_c": 37.0,
    "consciousness": "A",
    "on_oxygen": False,
}
# SpO2 91 alone scores 3 (a red score: low-medium band, a medium alert).
RED = {**NORMAL, "spo2": 91}
# 3 + 3 + 2 + 2 = 10: high band, the alert escalates and then reminds.
HIGH = {**NORMAL, "spo2": 88, "respiratory_rate": 26, "heart_rate": 118, "systolic_bp": 98}


@dataclass
class Feed:
    """Messages in production order, and what was injected among them."""

    messages: list[tuple[str, bytes, bytes]] = field(default_factory=list)
    injected: Counter[str] = field(default_factory=Counter)
    patients: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.messages)


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, tz=UTC).isoformat()


def _vitals_values(rng: random.Random, course: str, seq: int) -> dict[str, object]:
    if course == "deteriorates":
        # Red from seq 3 (opens), high from 5 (escalates; reminds 15 min later).
        base = RED if 3 <= seq < 5 else HIGH if seq >= 5 else NORMAL
    elif course == "transient":
        # Red at seq 3-4 (opens), clear from 5: resolves once clear for 15 min.
        base = RED if 3 <= seq < 5 else NORMAL
    elif course == "red":
        base = RED if seq >= 4 else NORMAL
    else:
        base = NORMAL
    values = dict(base)
    if base is NORMAL:
        values["heart_rate"] = rng.randint(62, 88)
        values["temperature_c"] = round(rng.uniform(36.4, 37.6), 1)
    return values


def build_feed(
    settings: Settings,
    *,
    patients: int = 200,
    events_per_patient: int = 13,
    seed: int = 6,
    duplicates: int = 0,
    reorder: int = 0,
    t0: float | None = None,
) -> Feed:
    """Profiles plus ``patients * events_per_patient`` events, round-robin in event time.

    ``duplicates`` events are sent a second time a few messages later (a
    producer retry: same topic, same bytes); ``reorder`` pairs of one
    patient's consecutive events are produced in swapped order (3 min apart,
    well within the lateness bound).
    """
    assert events_per_patient + 2 < settings.dedupe_window
    assert (events_per_patient + 1) * STEP_S < settings.lateness_minutes * 60
    rng = random.Random(seed)
    t0 = t0 if t0 is not None else 1_780_000_000.0
    feed = Feed(patients=[f"fp-{p:04d}" for p in range(patients)])
    courses = {
        pid: {0: "deteriorates", 4: "transient", 7: "red"}.get(p % 9, "stable")
        for p, pid in enumerate(feed.patients)
    }
    critical_k = {pid for p, pid in enumerate(feed.patients) if p % 11 == 3}
    aki = {pid for p, pid in enumerate(feed.patients) if p % 7 == 0}
    # High-severity lab alerts are reminded by *vitals* events (due_reminders runs on
    # vitals), which would tie alerts to the topic interleaving: patients with lab
    # alerts get no vitals.
    lab_only = {pid for pid in critical_k | aki if courses[pid] == "stable"}
    rounds: list[list[tuple[str, bytes, bytes]]] = []
    profiles = []
    for p, pid in enumerate(feed.patients):
        body = {"patient_id": pid, "age": 30 + p % 60, "sex": "female" if p % 2 else "male",
                "ward": f"W{p % 6}", "spo2_scale": 1, "updated_at": _iso(t0)}  # fmt: skip
        profiles.append((settings.topic_profiles, pid.encode(), orjson.dumps(body)))
        feed.injected["applied"] += 1
    rounds.append(profiles)
    for seq in range(1, events_per_patient + 1):
        batch = []
        for p, pid in enumerate(feed.patients):
            at = t0 + seq * STEP_S + p * 0.5
            event_id = f"{pid}:{seq}"
            draw = rng.random()
            key = pid.encode()
            if draw < 0.004:
                batch.append((settings.topic_vitals, key, b'{"event_id": "' + event_id.encode()))
                feed.injected["dead.malformed_json"] += 1
                continue
            if draw < 0.008:
                body = {"event_id": event_id, "patient_id": pid, "observed_at": _iso(at),
                        "heart_rate": 450}  # fmt: skip
                batch.append((settings.topic_vitals, key, orjson.dumps(body)))
                feed.injected["dead.implausible"] += 1
                continue
            if draw < 0.011:
                body = {"event_id": event_id, "patient_id": pid, "observed_at": _iso(at),
                        "analyte": "potassium", "value": 4.1, "unit": "furlongs"}  # fmt: skip
                batch.append((settings.topic_labs, key, orjson.dumps(body)))
                feed.injected["dead.unknown_unit"] += 1
                continue
            kind = rng.random()
            if pid in lab_only:
                kind = 0.7 + kind * 0.3  # labs and wearables only
            if kind < 0.7:
                topic = settings.topic_vitals
                body = {"event_id": event_id, "patient_id": pid, "observed_at": _iso(at),
                        "source": "faults", **_vitals_values(rng, courses[pid], seq)}  # fmt: skip
            elif kind < 0.9:
                topic = settings.topic_labs
                if rng.random() < 0.5:
                    critical = pid in critical_k and pid in lab_only and seq in (6, 7)
                    k = 6.9 if critical else round(rng.uniform(3.6, 5.0), 1)
                    analyte, value, unit = "potassium", k, "mmol/L"
                else:
                    rise = 9 if pid in aki and pid in lab_only else 1
                    analyte, value, unit = "creatinine", 70 + seq * rise, "umol/L"
                body = {"event_id": event_id, "patient_id": pid, "observed_at": _iso(at),
                        "analyte": analyte, "value": value, "unit": unit}  # fmt: skip
            else:
                topic = settings.topic_wearables
                body = {"event_id": event_id, "patient_id": pid, "observed_at": _iso(at),
                        "device_id": f"watch-{p}",
                        "readings": [{"observed_at": _iso(at - 60 * i), "heart_rate": rng.randint(60, 95),
                                      "steps": rng.randint(0, 30)} for i in range(3)]}  # fmt: skip
            batch.append((topic, key, orjson.dumps(body)))
            feed.injected["applied"] += 1
        rng.shuffle(batch)
        rounds.append(batch)
    for batch in rounds:
        feed.messages.extend(batch)
    for _ in range(reorder):
        # Swap one patient's event with the same patient's next one on the same topic.
        i = rng.randrange(len(profiles), len(feed.messages) - 1)
        topic, key, _ = feed.messages[i]
        j = next(
            (j for j in range(i + 1, len(feed.messages))
             if feed.messages[j][0] == topic and feed.messages[j][1] == key),
            None,
        )  # fmt: skip
        if j is not None:
            feed.messages[i], feed.messages[j] = feed.messages[j], feed.messages[i]
            feed.injected["reordered"] += 1
    for _ in range(duplicates):
        i = rng.randrange(len(profiles), len(feed.messages))
        topic, key, value = feed.messages[i]
        if value.startswith(b'{"event_id": "') and not value.endswith(b"}"):
            continue  # a malformed one: its copy would be a second dead letter, not a duplicate
        if b'"heart_rate":450' in value or b"furlongs" in value:
            continue
        feed.messages.insert(min(i + rng.randint(1, 40), len(feed.messages)), (topic, key, value))
        feed.injected["duplicates"] += 1
    return feed
