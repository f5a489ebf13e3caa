"""The latency bench's feed: the alerting events it promises, and when they come."""

from collections import Counter
from datetime import UTC, datetime

import orjson
import pytest

from bench.latency import event_json, level_changes, spo2_level
from schemas.vitals import VitalsEvent


def _alert_times(rate: int, patients: int, seconds: int, staggered: bool) -> list[float]:
    # Patient i sends its k-th event at (k * patients + i) / rate s (bench.latency.produce).
    out = []
    for i in range(patients):
        for k in range(1, seconds * rate // patients):
            if spo2_level(i, k, staggered) != spo2_level(i, k - 1, staggered):
                out.append((k * patients + i) / rate)
    return out


def test_staggered_alerts_are_spread_over_each_second() -> None:
    # After the first second (whose first round has no change of level to alert on).
    times = [t for t in _alert_times(2000, 1000, 10, staggered=True) if t >= 1]
    quarters = Counter(int(t * 4) % 4 for t in times)
    assert max(quarters.values()) - min(quarters.values()) <= 0.02 * len(times)


def test_synchronized_alerts_come_in_the_first_half_of_each_second() -> None:
    halves = Counter(int(t * 2) % 2 for t in _alert_times(2000, 1000, 10, staggered=False))
    assert halves[0] > 0 and halves[1] == 0


@pytest.mark.parametrize("staggered", [True, False])
def test_expected_alerts_count_every_change_of_level(staggered: bool) -> None:
    for n in range(30):
        for i in range(3):
            assert level_changes(i, n, staggered) == sum(
                spo2_level(i, k, staggered) != spo2_level(i, k - 1, staggered) for k in range(1, n)
            )
    # Half of all events trigger an alert either way.
    total = sum(level_changes(i, 200, staggered) for i in range(1000))
    assert abs(total - 100_000) <= 1000


def test_event_json_is_the_events_dict_and_a_valid_vitals_event() -> None:
    observed_at = datetime.now(UTC).isoformat()
    doc = {
        "event_id": "lat-00007:12",
        "patient_id": "lat-00007",
        "observed_at": observed_at,
        "source": "bench-latency",
        "heart_rate": 75,
        "respiratory_rate": 16,
        "spo2": 88,
        "systolic_bp": 122,
        "diastolic_bp": 78,
        "temperature_c": 37.0,
        "consciousness": "A",
        "on_oxygen": False,
    }
    raw = event_json("lat-00007", 12, 88, observed_at)
    assert raw == orjson.dumps(doc)
    event = VitalsEvent.model_validate_json(raw)
    assert event.spo2 == 88 and event.patient_id == "lat-00007"
