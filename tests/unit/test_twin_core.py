"""The twin core's contracts: idempotence, reorder-independence, the alert lifecycle,
lab rules and the codec, on plain functions with no broker and no event loop."""

from __future__ import annotations

import dataclasses
import zlib
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import msgpack
import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from schemas.acks import AlertAck
from schemas.alert import Alert
from schemas.labs import LabEvent
from schemas.profiles import MAX_CONDITIONS, PatientProfile
from schemas.vitals import VitalsEvent
from twin.alerting import alert_id
from twin.apply import (
    AKI_RULE,
    LACTATE_RISE_RULE,
    NEWS2_RULE,
    apply_ack,
    apply_lab,
    apply_profile,
    apply_vitals,
    check_stale,
)
from twin.assess import assess
from twin.codec import CodecError, decode_twin, encode_twin
from twin.config import DEFAULT_CRITICAL_LABS, TwinConfig
from twin.state import TwinState

pytestmark = pytest.mark.unit

PID = "p-0001"
T0 = 1_800_000_000.0
MIN = 60.0
HOUR = 3600.0
CFG = TwinConfig()
PROPERTY = settings(max_examples=150, deadline=None)

# NEWS2 (RCP 2017) totals of each vital set; SBP stays normal so qSOFA never fires.
NORMAL: dict[str, Any] = {
    "heart_rate": 75, "respiratory_rate": 16, "spo2": 97, "systolic_bp": 122,
    "diastolic_bp": 78, "temperature_c": 37.0, "consciousness": "A", "on_oxygen": False,
}  # fmt: skip
# RR 22 (2) + SpO2 95 (1) + HR 95 (1) + 38.3 degC (1) = 5: "medium", urgent response.
MEDIUM = NORMAL | {"respiratory_rate": 22, "spo2": 95, "heart_rate": 95, "temperature_c": 38.3}
# RR 25 (3) + SpO2 93 (2) + HR 115 (2) + 38.3 degC (1) = 8: "high", emergency response.
HIGH = NORMAL | {"respiratory_rate": 25, "spo2": 93, "heart_rate": 115, "temperature_c": 38.3}


def ts(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


def vitals(eid: str, at: float, **values: Any) -> VitalsEvent:
    return VitalsEvent(event_id=eid, patient_id=PID, observed_at=ts(at), **values)


def lab(eid: str, at: float, analyte: str, value: float, unit: str) -> LabEvent:
    return LabEvent(
        event_id=eid, patient_id=PID, observed_at=ts(at), analyte=analyte, value=value, unit=unit
    )


def ack(alert: str, at: float) -> AlertAck:
    return AlertAck(alert_id=alert, by="rn-4411", at=ts(at))


Applier = Callable[[TwinState, Any, TwinConfig, float], list[Alert] | None]
APPLY: dict[type[BaseModel], Applier] = {
    VitalsEvent: apply_vitals,
    LabEvent: apply_lab,
    PatientProfile: apply_profile,
    AlertAck: apply_ack,
}


def apply(state: TwinState, event: BaseModel, cfg: TwinConfig = CFG) -> list[Alert] | None:
    # ``now`` is wall time, used only for ``emitted_at``: fixed so runs compare equal.
    return APPLY[type(event)](state, event, cfg, T0)


def news2_only(alerts: list[Alert] | None) -> list[Alert]:
    """The NEWS2 rule's alerts: other rules (learned baselines) may fire on the same vitals."""
    return [a for a in alerts or [] if a.rule == NEWS2_RULE]


def apply_all(events: Sequence[BaseModel], cfg: TwinConfig = CFG) -> tuple[TwinState, list[Alert]]:
    state, alerts = TwinState(PID), []
    for event in events:
        alerts.extend(apply(state, event, cfg) or [])
    return state, alerts


# -- strategies ------------------------------------------------------------------

_VITAL_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "heart_rate": st.integers(30, 180),
    "respiratory_rate": st.integers(6, 40),
    "spo2": st.integers(80, 100),
    "systolic_bp": st.integers(70, 230),
    "diastolic_bp": st.integers(40, 120),
    "temperature_c": st.integers(340, 410).map(lambda t: t / 10),
    "consciousness": st.sampled_from("ACVPU"),
    "on_oxygen": st.booleans(),
}
_LAB_VALUES: list[tuple[str, str, st.SearchStrategy[float]]] = [
    ("potassium", "mmol/L", st.integers(20, 80).map(lambda v: v / 10)),
    ("sodium", "mmol/L", st.integers(110, 170).map(float)),
    ("glucose", "mmol/L", st.integers(10, 300).map(lambda v: v / 10)),
    ("glucose", "mg/dL", st.integers(20, 500).map(float)),
    ("creatinine", "mg/dL", st.integers(4, 60).map(lambda v: v / 10)),
    ("creatinine", "umol/L", st.integers(35, 530).map(float)),
    ("lactate", "mmol/L", st.integers(5, 100).map(lambda v: v / 10)),
    ("haemoglobin", "g/dL", st.integers(40, 180).map(lambda v: v / 10)),
    ("haemoglobin", "g/L", st.integers(40, 180).map(float)),
    ("ph", "pH", st.integers(690, 780).map(lambda v: v / 100)),
]


@st.composite
def vitals_events(draw: st.DrawFn, eid: str, at: float) -> VitalsEvent:
    values = draw(
        st.fixed_dictionaries({}, optional=_VITAL_VALUES).filter(bool)  # at least one reading
    )
    return vitals(eid, at, **values)


@st.composite
def lab_events(draw: st.DrawFn, eid: str, at: float) -> LabEvent:
    analyte, unit, value = draw(st.sampled_from(_LAB_VALUES))
    return lab(eid, at, analyte, draw(value), unit)


@st.composite
def event_sequences(
    draw: st.DrawFn, *, max_size: int = 30, span_s: int = 3599, profiles: bool = False
) -> list[BaseModel]:
    """Vitals and labs (and profiles) with unique ids at whole seconds in ``[0, span_s]``.

    Times may repeat: two devices can report the same second.
    """
    n = draw(st.integers(1, max_size))
    events: list[BaseModel] = []
    for i in range(n):
        at = T0 + draw(st.integers(0, span_s))
        kind = draw(st.sampled_from(["vitals", "vitals", "lab"]))
        maker = vitals_events if kind == "vitals" else lab_events
        events.append(draw(maker(f"e{i}", at)))
    if profiles:
        # Distinct ``updated_at``: on a tie the contract itself keeps one profile by
        # arrival (PatientProfile.supersedes), so ties are order-dependent by design.
        stamps = draw(st.lists(st.integers(0, span_s), max_size=4, unique=True))
        for stamp in stamps:
            events.append(
                PatientProfile(
                    patient_id=PID,
                    age=draw(st.integers(18, 100)),
                    spo2_scale=draw(st.sampled_from([1, 2])),
                    # No more conditions than a valid profile carries.
                    conditions=draw(
                        st.lists(st.sampled_from(["copd", "t2dm", "ckd"]), max_size=MAX_CONDITIONS)
                    ),
                    updated_at=ts(T0 + stamp),
                )
            )
    return events


# -- (a) idempotence --------------------------------------------------------------


@PROPERTY
@given(data=st.data(), events=event_sequences(max_size=CFG.dedupe_window - 2))
def test_redelivered_events_change_nothing(data: st.DataObject, events: list[BaseModel]) -> None:
    """At-least-once delivery: an event delivered again, at any later point, is a no-op.

    Sequences stay shorter than ``dedupe_window``, the number of ids a twin remembers.
    """
    once, once_alerts = apply_all(events)
    redelivered: list[BaseModel] = []
    for i, event in enumerate(events):
        redelivered.append(event)
        redelivered.extend(data.draw(st.lists(st.sampled_from(events[: i + 1]), max_size=2)))
    twice, twice_alerts, seen = TwinState(PID), [], set()
    for event in redelivered:
        result = apply(twice, event)
        eid = event.event_id  # type: ignore[attr-defined]
        assert (result is None) == (eid in seen), "a duplicate returns None, a first delivery not"
        seen.add(eid)
        twice_alerts.extend(result or [])
    assert encode_twin(twice) == encode_twin(once)
    assert twice_alerts == once_alerts
    # After the whole sequence, anything at all delivered again.
    before = encode_twin(once)
    again = data.draw(st.lists(st.sampled_from(events), min_size=1))
    assert all(apply(once, event) is None for event in again)
    assert encode_twin(once) == before


def test_dedupe_remembers_exactly_the_window() -> None:
    cfg = TwinConfig(dedupe_window=4)
    state = TwinState(PID)
    events = [vitals(f"e{i}", T0 + i * MIN, heart_rate=70 + i) for i in range(5)]
    for event in events:
        apply(state, event, cfg)
    assert apply(state, events[1], cfg) is None  # among the last 4 ids
    assert apply(state, events[0], cfg) is not None  # forgotten: applied again, by design
    assert state.events_applied == 6


# -- (b) reorder-independence -----------------------------------------------------


def order_free_view(state: TwinState) -> dict[str, Any]:
    return {
        "latest": state.latest,
        "windows": state.windows,
        "lab_history": state.lab_history,
        "events_applied": state.events_applied,
        "last_vitals_at": state.last_vitals_at,
        "newest_event_at": state.newest_event_at,
        "profile": state.profile,
    }


@PROPERTY
@given(data=st.data(), events=event_sequences(span_s=int(CFG.lateness_s) - 1, profiles=True))
def test_arrival_order_does_not_change_what_the_twin_knows(
    data: st.DataObject, events: list[BaseModel]
) -> None:
    """Any permutation of events whose times lie within the lateness bound ends in the
    same latest values, windows, lab histories, events_applied, last_vitals_at and profile.

    Not the alert history, open episodes or ``news2_history``: they record what was
    known as each event arrived, so they legitimately depend on arrival order.
    """
    shuffled = data.draw(st.permutations(events))
    in_order, _ = apply_all(events)
    reordered, _ = apply_all(shuffled)
    assert order_free_view(reordered) == order_free_view(in_order)


def test_same_second_readings_keep_one_value_whatever_the_order() -> None:
    # Two monitors (or the vitals and FHIR topics) report the same second.
    a = vitals("monitor-1:9", T0, heart_rate=88)
    b = vitals("monitor-2:4", T0, heart_rate=91)
    first, _ = apply_all([a, b])
    second, _ = apply_all([b, a])
    assert first.latest["heart_rate"] == second.latest["heart_rate"]


# -- (c) one alert per episode ----------------------------------------------------

FAST = TwinConfig(
    hold_s=10 * MIN,
    cooldown_s=10 * MIN,
    continuous_reminder_s=5 * MIN,
    ack_silence_s=15 * MIN,
    stale_after_s=30 * MIN,
)
SEVERITY = {"info": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}


@st.composite
def journey_vitals(draw: st.DrawFn, eid: str, at: float) -> VitalsEvent:
    preset = draw(st.sampled_from([NORMAL, NORMAL, MEDIUM, HIGH, None]))
    return vitals(eid, at, **preset) if preset else draw(vitals_events(eid, at))


def assert_one_alert_per_episode(alerts: list[Alert]) -> None:
    open_now: dict[str, Alert] = {}
    episodes: dict[str, int] = {}
    opened: set[str] = set()
    reminders: set[tuple[str, int]] = set()
    severity: dict[str, str] = {}
    for a in alerts:
        current = open_now.get(a.rule)
        if a.status == "open":
            assert a.alert_id not in opened, f"{a.rule}: episode opened twice"
            assert current is None, f"{a.rule}: second episode while {current} is open"
            episodes[a.rule] = episodes.get(a.rule, 0) + 1
            assert a.alert_id == alert_id(PID, a.rule, episodes[a.rule])
            opened.add(a.alert_id)
            open_now[a.rule] = a
            severity[a.alert_id] = a.severity
            continue
        assert current is not None, f"{a.status} of {a.rule} with no open episode"
        assert a.alert_id == current.alert_id
        if a.rule != "data.stale":
            # Rules driven by the patient's own results never go back in event time
            # within an episode (data.stale opens on the partition's clock instead).
            assert a.observed_at >= current.observed_at, f"{a.rule}: {a.status} before its open"
        if a.status == "escalated":
            assert SEVERITY[a.severity] > SEVERITY[severity[a.alert_id]]
            severity[a.alert_id] = a.severity
        elif a.status == "reminder":
            assert a.severity in ("high", "critical")
            key = (a.alert_id, a.details["reminder"])
            assert key not in reminders, "two reminders a subscriber cannot tell apart"
            reminders.add(key)
        else:
            assert a.status == "resolved" and a.details["all_clear"] is True
            del open_now[a.rule]


@PROPERTY
@given(data=st.data())
def test_an_alert_never_opens_twice_for_one_episode(data: st.DataObject) -> None:
    """Vitals, labs (some late), acks of alerts seen so far and stale scans, in any
    mix: every (alert_id, "open") appears at most once, every update and "resolved"
    follows the "open" of its alert_id, and a rule has at most one open episode."""
    state, alerts, clock = TwinState(PID), [], T0
    for i in range(data.draw(st.integers(1, 60), label="events")):
        clock += data.draw(st.integers(0, 20 * 60))
        at = clock - data.draw(st.sampled_from([0, 0, 0, 0, 60, 1800, 7200]))  # some late
        kind = data.draw(st.sampled_from(["vitals"] * 4 + ["lab"] * 3 + ["ack", "stale"]))
        if kind == "vitals":
            out = apply(state, data.draw(journey_vitals(f"e{i}", at)), FAST)
        elif kind == "lab":
            out = apply(state, data.draw(lab_events(f"e{i}", at)), FAST)
        elif kind == "ack" and alerts:
            chosen = data.draw(st.sampled_from([a.alert_id for a in alerts]))
            out = apply(state, ack(chosen, at), FAST)
        else:
            out = check_stale(state, FAST, clock, T0)
        alerts.extend(out or [])
    assert_one_alert_per_episode(alerts)


# -- lifecycle, table-driven ------------------------------------------------------

VITAL_SETS = {"normal": NORMAL, "medium": MEDIUM, "high": HIGH}

# Default TwinConfig: hold 15 min, cooldown 15 min, reminders every 15 min for
# high severity, an acknowledgement silences them for 60 min.
# (minute, what happens, alerts expected as (status, severity, episode))
JOURNEY: list[tuple[float, str, list[tuple[str, str, int]]]] = [
    (0, "normal", []),
    (5, "medium", [("open", "medium", 1)]),  # NEWS2 5: urgent response
    (10, "high", [("escalated", "high", 1)]),  # NEWS2 8: emergency response
    (15, "high", []),
    (20, "high", []),
    (25, "high", [("reminder", "high", 1)]),  # 15 min since the escalation
    (26, "ack", []),  # silences reminders until minute 86
    (40, "high", []),
    (55, "high", []),
    (70, "high", []),
    (85, "high", []),
    (90, "high", [("reminder", "high", 1)]),  # the acknowledgement has lapsed
    (95, "normal", []),  # clear from here
    (100, "normal", []),
    (105, "normal", []),
    (110, "normal", [("resolved", "info", 1)]),  # clear for the 15 min hold
    (115, "medium", []),  # cooldown until minute 125
    (120, "medium", []),
    (125, "medium", [("open", "medium", 2)]),  # a new episode: a new alert_id
    (130, "normal", []),
]


def test_alert_lifecycle_journey() -> None:
    state = TwinState(PID)
    sent: list[Alert] = []
    for i, (minute, step, expected) in enumerate(JOURNEY):
        at = T0 + minute * MIN
        if step == "ack":
            event: BaseModel = ack(alert_id(PID, NEWS2_RULE, 1), at)
        else:
            event = vitals(f"v{i}", at, **VITAL_SETS[step])
        out = news2_only(apply(state, event))
        assert [(a.status, a.severity, a.alert_id) for a in out] == [
            (status, severity, alert_id(PID, NEWS2_RULE, episode))
            for status, severity, episode in expected
        ], f"minute {minute}"
        assert all(a.observed_at == ts(at) for a in out)
        sent.extend(out)
    opened, escalated, reminder1, reminder2, resolved, reopened = sent
    assert {a.alert_id for a in sent[:5]} == {alert_id(PID, NEWS2_RULE, 1)}
    assert reopened.alert_id == alert_id(PID, NEWS2_RULE, 2) != opened.alert_id
    assert opened.details["news2_total"] == 5 and opened.details["band"] == "medium"
    assert escalated.details["news2_total"] == 8 and escalated.details["band"] == "high"
    assert "Emergency response threshold" in escalated.details["response"]
    assert reminder2.details["reminder"] > reminder1.details["reminder"]
    assert reminder2.details["open_minutes"] == 85
    assert resolved.details["all_clear"] is True and resolved.details["was"] == "high"
    assert resolved.details["news2_total"] == 0
    assert state.open_alerts[NEWS2_RULE].episode == 2


def test_medium_alerts_do_not_remind() -> None:
    state = TwinState(PID)
    out = [news2_only(apply(state, vitals(f"v{i}", T0 + i * 5 * MIN, **MEDIUM))) for i in range(30)]
    assert [a.status for batch in out for a in batch] == ["open"]


@settings(max_examples=500)
@given(
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)),
    st.sampled_from(["Z", "+00:00", "-00:00", "+05:30", "-08:00", "+14:00"]),
)
def test_event_seconds_are_the_timestamps_pydantic_gives(naive: datetime, offset: str) -> None:
    # apply's fast path for pydantic-core's UTC tzinfo, and its fallback, against timestamp().
    from pydantic import AwareDatetime, TypeAdapter

    from twin.apply import _seconds

    when = TypeAdapter(AwareDatetime).validate_json(f'"{naive.isoformat()}{offset}"')
    assert _seconds(when) == when.timestamp()
    assert _seconds(when.astimezone(UTC)) == when.timestamp()


# Readings (time, value) of one vital, out of order, over +-10 h: slot edges and between.
WINDOW_READINGS = st.lists(
    st.tuples(
        st.integers(min_value=-30, max_value=30).map(lambda slot: slot * 1200.0)
        | st.floats(min_value=-36_000, max_value=36_000),
        st.floats(min_value=0, max_value=300),
    ),
    min_size=1,
    max_size=40,
)


@settings(max_examples=500)
@given(WINDOW_READINGS)
def test_windows_hold_the_buckets_of_the_last_18_slots_whatever_the_order(
    readings: list[tuple[float, float]],
) -> None:
    from array import array

    from twin.windows import SLOT_S, SLOTS, VitalWindow

    window = VitalWindow()
    for at, value in readings:
        window.add(at, value)
    slots = [int(at // SLOT_S) for at, _ in readings]
    newest = max(slots)
    buckets: dict[int, list[int]] = {}
    for slot, (_, value) in zip(slots, readings, strict=True):
        v = round(value * 100)
        if slot > newest - SLOTS:
            b = buckets.setdefault(slot, [slot, 0, 0, v, v])
            b[1] += 1
            b[2] += v
            b[3] = min(b[3], v)
            b[4] = max(b[4], v)
    assert window.data == array("i", [x for slot in sorted(buckets) for x in buckets[slot]])


@given(readings=WINDOW_READINGS, decode_after=st.integers(min_value=0, max_value=40))
def test_a_window_encoded_between_readings_matches_one_built_from_its_buckets(
    readings: list[tuple[float, float]], decode_after: int
) -> None:
    """The kept encodings (of the older buckets, of the whole window) never go stale,
    and a window decoded part way through takes the remaining readings alike."""
    from twin.windows import VitalWindow

    window = VitalWindow()
    decoded: VitalWindow | None = None
    for i, (at, value) in enumerate(readings):
        if i == decode_after:
            decoded = VitalWindow.from_ints(window.to_ints())
        window.add(at, value)
        if decoded is not None:
            decoded.add(at, value)
            assert decoded.to_ints() == window.to_ints()
        assert window.to_ints() == VitalWindow(window.data).to_ints()
        assert VitalWindow.from_ints(window.to_ints()).data == window.data
    if decoded is not None:
        assert decoded == window


def test_a_window_refuses_what_its_32_bit_buckets_cannot_hold_and_stays_as_it_was() -> None:
    from twin.windows import VitalWindow

    window = VitalWindow()
    with pytest.raises(OverflowError):
        window.add(0.0, 3e7)  # 3e9 hundredths: past 2**31 - 1
    window.add(0.0, 2e7)
    before = window.to_ints()
    with pytest.raises(OverflowError):
        window.add(1.0, 2e7)  # the bucket's sum would not fit
    assert window.to_ints() == before and window.data[:3].tolist() == [0, 1, 2_000_000_000]


@given(st.text(max_size=300))
def test_event_fingerprints_are_6_byte_blake2b_digests(event_id: str) -> None:
    import hashlib

    from twin.state import event_fingerprint

    try:
        expected = hashlib.blake2b(event_id.encode(), digest_size=6).digest()
    except UnicodeEncodeError:
        with pytest.raises(UnicodeEncodeError):
            event_fingerprint(event_id)
        return
    assert event_fingerprint(event_id) == expected


@settings(max_examples=500)
@given(st.text(max_size=130), st.text(max_size=200), st.integers(min_value=0, max_value=10**9))
def test_alert_ids_are_the_uuid5_of_patient_rule_and_episode(
    patient_id: str, rule: str, episode: int
) -> None:
    import uuid

    from twin.alerting import _NAMESPACE

    name = f"{patient_id}|{rule}|{episode}"
    try:
        expected = str(uuid.uuid5(_NAMESPACE, name))
    except UnicodeEncodeError:  # lone surrogates: both raise
        with pytest.raises(UnicodeEncodeError):
            alert_id.__wrapped__(patient_id, rule, episode)
        return
    assert alert_id.__wrapped__(patient_id, rule, episode) == expected


def test_acks_only_silence_the_open_episode_they_name() -> None:
    state = TwinState(PID)
    apply(state, vitals("v0", T0, **HIGH))
    assert apply(state, ack("no-such-alert", T0)) == []
    assert state.open_alerts[NEWS2_RULE].acked_until is None
    apply(state, ack(alert_id(PID, NEWS2_RULE, 1), T0 + MIN))
    assert state.open_alerts[NEWS2_RULE].acked_until == T0 + MIN + CFG.ack_silence_s
    # An ack of episode 1 does not silence episode 2.
    for i in range(1, 5):
        apply(state, vitals(f"n{i}", T0 + i * 10 * MIN, **NORMAL))
    assert NEWS2_RULE not in state.open_alerts
    apply(state, vitals("v9", T0 + 60 * MIN, **HIGH))
    apply(state, ack(alert_id(PID, NEWS2_RULE, 1), T0 + 61 * MIN))
    assert state.open_alerts[NEWS2_RULE].acked_until is None
    out = news2_only(apply(state, vitals("v10", T0 + 75 * MIN, **HIGH)))
    assert [(a.status, a.alert_id) for a in out] == [("reminder", alert_id(PID, NEWS2_RULE, 2))]


def test_late_events_raise_no_alert_but_update_history() -> None:
    state = TwinState(PID)
    apply(state, vitals("now", T0 + 3 * HOUR, **NORMAL))
    late_at = T0 + 3 * HOUR - CFG.lateness_s - MIN  # 61 min behind the newest event
    assert apply(state, vitals("late-v", late_at, respiratory_rate=30, spo2=85)) == []
    assert apply(state, lab("late-k", late_at, "potassium", 7.1, "mmol/L")) == []
    assert apply(state, lab("late-c", late_at, "creatinine", 1.1, "mg/dL")) == []
    assert state.open_alerts == {} and state.episodes == {}
    assert state.events_applied == 4
    assert state.last_vitals_at == T0 + 3 * HOUR
    assert state.latest["spo2"].value == 97  # the newer reading stays the latest
    assert state.latest["lab.potassium"].value == 7.1  # the only potassium there is
    assert state.lab_history["creatinine"] == [(late_at, 1.1)]
    assert state.windows["spo2"].stats(6 * HOUR).min == 85  # type: ignore[union-attr]
    assert len(state.news2_history) == 1
    # Exactly at the lateness bound is still current.
    edge = T0 + 3 * HOUR - CFG.lateness_s
    assert [
        a.rule for a in apply(state, lab("edge-k", edge, "potassium", 7.2, "mmol/L")) or []
    ] == ["lab.critical.potassium"]


@pytest.mark.parametrize(
    ("age_min", "scored"),
    [(59, True), (60, True), (61, False), (240, False)],
)
def test_vitals_older_than_fresh_window_are_missing_not_scored(age_min: int, scored: bool) -> None:
    state = TwinState(PID)
    apply(state, vitals("full", T0, **NORMAL))
    out = news2_only(apply(state, vitals("rr", T0 + age_min * MIN, respiratory_rate=26)))
    # RR 26 scores 3 (a red score): an alert opens either way.
    (alert,) = out
    stale = ["spo2", "air_or_oxygen", "systolic_bp", "heart_rate", "consciousness", "temperature_c"]
    details = alert.details
    assert details["subscores"]["respiratory_rate"] == 3
    if scored:
        assert details["missing"] == [] and details["partial"] is False
        assert set(details["subscores"]) == {"respiratory_rate", *stale}
    else:
        assert details["missing"] == stale and details["partial"] is True
        assert details["subscores"] == {"respiratory_rate": 3}  # stale ones absent, never 0
    a = assess(state, CFG, T0 + age_min * MIN)
    assert a.news2.partial is not scored and a.mews.partial is not scored


def test_stale_data_alert_opens_on_stream_time_and_resolves_on_vitals() -> None:
    state = TwinState(PID)
    apply(state, vitals("v0", T0, **NORMAL))
    assert check_stale(state, CFG, T0 + CFG.stale_after_s - 1, T0) == []
    (opened,) = check_stale(state, CFG, T0 + CFG.stale_after_s, T0)
    assert (opened.rule, opened.status, opened.details["minutes_without_vitals"]) == (
        "data.stale", "open", 240,
    )  # fmt: skip
    assert check_stale(state, CFG, T0 + CFG.stale_after_s + HOUR, T0) == []  # already open
    out = apply(state, vitals("v1", T0 + 5 * HOUR, **NORMAL)) or []
    assert [a.status for a in out if a.rule == "data.stale"] == ["resolved"]


# -- lab rules --------------------------------------------------------------------

# (analyte, value, unit as reported, direction or None, threshold in canonical units)
CRITICAL_LABS = [
    ("potassium", 6.5, "mmol/L", "high", 6.5),  # at the limit is critical (CriticalRange)
    ("potassium", 6.4, "mmol/L", None, None),
    ("potassium", 2.5, "mEq/L", "low", 2.5),
    ("potassium", 2.6, "mmol/L", None, None),
    ("sodium", 120.0, "mmol/L", "low", 120.0),
    ("sodium", 121.0, "mmol/L", None, None),
    ("sodium", 160.0, "mmol/L", "high", 160.0),
    ("sodium", 159.0, "mmol/L", None, None),
    ("glucose", 2.5, "mmol/L", "low", 2.5),
    ("glucose", 45.0, "mg/dL", "low", 2.5),  # 2.50 mmol/L
    ("glucose", 25.0, "mmol/L", "high", 25.0),
    ("glucose", 450.0, "mg/dL", None, None),  # 24.98 mmol/L
    ("glucose", 451.0, "mg/dL", "high", 25.0),  # 25.03 mmol/L
    ("lactate", 4.1, "mmol/L", "high", 4.0),
    ("lactate", 4.0, "mmol/L", "high", 4.0),  # SSC hour-1 bundle: lactate >= 4 mmol/L
    ("lactate", 3.9, "mmol/L", None, None),
    ("lactate", 37.0, "mg/dL", "high", 4.0),  # 4.11 mmol/L
    ("haemoglobin", 6.9, "g/dL", "low", 7.0),
    ("haemoglobin", 69.0, "g/L", "low", 7.0),
    ("haemoglobin", 4.2, "mmol/L", "low", 7.0),  # 6.77 g/dL
    ("haemoglobin", 7.1, "g/dL", None, None),
    ("ph", 7.19, "pH", "low", 7.2),
    ("ph", 7.61, "[pH]", "high", 7.6),
    ("ph", 7.4, "pH", None, None),
]


@pytest.mark.parametrize(("analyte", "value", "unit", "direction", "threshold"), CRITICAL_LABS)
def test_critical_lab_values(
    analyte: str, value: float, unit: str, direction: str | None, threshold: float | None
) -> None:
    state = TwinState(PID)
    event = lab("l1", T0, analyte, value, unit)
    out = [a for a in apply(state, event) or [] if a.rule == f"lab.critical.{analyte}"]
    if direction is None:
        assert out == []
        return
    (alert,) = out
    _, canonical, canonical_unit = event.canonical()
    assert (alert.status, alert.severity, alert.kind) == ("open", "high", "critical_lab")
    assert alert.details == {
        "analyte": analyte,
        "value": round(canonical, 3),
        "unit": canonical_unit,
        "direction": direction,
        "threshold": threshold,
        "source": DEFAULT_CRITICAL_LABS[analyte].source,
    }


def test_critical_lab_resolves_on_the_next_normal_result_not_an_older_one() -> None:
    # A STAT potassium collected at 09:00 is resulted before the routine one
    # collected at 08:00: the older, normal result must not clear the critical one.
    state = TwinState(PID)
    (opened,) = apply(state, lab("stat", T0 + HOUR, "potassium", 7.0, "mmol/L")) or []
    assert opened.status == "open"
    assert apply(state, lab("routine", T0, "potassium", 4.1, "mmol/L")) == []
    assert "lab.critical.potassium" in state.open_alerts
    assert state.latest["lab.potassium"].value == 7.0
    (resolved,) = apply(state, lab("next", T0 + 2 * HOUR, "potassium", 4.4, "mmol/L")) or []
    assert (resolved.status, resolved.alert_id) == ("resolved", opened.alert_id)
    assert resolved.details["all_clear"] is True


Earlier = list[tuple[float, float, str]]  # (hours before, value, unit)

AKI_CASES = [
    pytest.param([(24, 1.0, "mg/dL")], 1.3, "mg/dL", 1, id="+0.3 within 24 h"),
    pytest.param([(47, 1.1, "mg/dL")], 1.4, "mg/dL", 1, id="+0.3 within 47 h (float edge)"),
    pytest.param([(48, 1.0, "mg/dL")], 1.3, "mg/dL", 1, id="+0.3 at exactly 48 h"),
    pytest.param([(24, 1.0, "mg/dL")], 1.29, "mg/dL", None, id="+0.29 within 24 h"),
    pytest.param([(72, 1.0, "mg/dL")], 1.3, "mg/dL", None, id="+0.3 over 72 h"),
    pytest.param([(120, 1.0, "mg/dL")], 1.5, "mg/dL", 1, id="1.5x the 7-day low"),
    pytest.param([(120, 0.4, "mg/dL")], 0.6, "mg/dL", 1, id="1.5x exactly (float edge)"),
    pytest.param([(120, 1.0, "mg/dL")], 1.45, "mg/dL", None, id="1.45x the 7-day low"),
    pytest.param([(8 * 24, 1.0, "mg/dL")], 1.5, "mg/dL", None, id="1.5x an 8-day-old low"),
    pytest.param([(150, 0.8, "mg/dL")], 1.6, "mg/dL", 2, id="2x the 7-day low: stage 2"),
    pytest.param([(24, 1.0, "mg/dL")], 3.0, "mg/dL", 3, id="3x: stage 3"),
    pytest.param([(24, 80.0, "umol/L")], 110.0, "umol/L", 1, id="+30 umol/L within 24 h"),
    pytest.param([(24, 80.0, "umol/L")], 100.0, "umol/L", None, id="+20 umol/L within 24 h"),
    pytest.param([(24, 1.0, "mg/dL")], 115.0, "umol/L", 1, id="mg/dL then umol/L"),
]


@pytest.mark.parametrize(("earlier", "value", "unit", "stage"), AKI_CASES)
def test_kdigo_aki(earlier: Earlier, value: float, unit: str, stage: int | None) -> None:
    state = TwinState(PID)
    now = T0 + 10 * 24 * HOUR
    for i, (hours, v, u) in enumerate(earlier):
        assert apply(state, lab(f"c{i}", now - hours * HOUR, "creatinine", v, u)) == []
    out = [
        a
        for a in apply(state, lab("c", now, "creatinine", value, unit)) or []
        if a.rule == AKI_RULE
    ]
    if stage is None:
        assert out == []
        return
    (alert,) = out
    assert (alert.status, alert.kind) == ("open", "aki")
    assert alert.severity == ("high" if stage >= 2 else "medium")
    details = alert.details
    assert details["kdigo_stage"] == stage
    assert details["analyte"] == "creatinine" and details["unit"] == "mg/dL"
    assert details["value"] == pytest.approx(value / (88.42 if unit == "umol/L" else 1), abs=1e-3)
    assert details["threshold"] == {"rise_48h_mg_dl": 0.3, "ratio_to_7d_low": 1.5}
    assert details["source"].startswith("KDIGO 2012")


LACTATE_CASES = [
    pytest.param(2.5, 2.0, 3.0, True, id="higher within 6 h, above 2"),
    pytest.param(1.8, 1.0, 2.1, True, id="from below 2 to above 2"),
    pytest.param(3.0, 2.0, 2.5, False, id="lower"),
    pytest.param(2.5, 2.0, 2.5, False, id="unchanged"),
    pytest.param(1.5, 2.0, 1.9, False, id="higher, not above 2"),
    pytest.param(2.5, 6.0, 3.0, True, id="exactly 6 h apart"),
    pytest.param(2.5, 6.1, 3.0, False, id="more than 6 h apart"),
]


@pytest.mark.parametrize(("first", "hours", "second", "fires"), LACTATE_CASES)
def test_rising_lactate(first: float, hours: float, second: float, fires: bool) -> None:
    state = TwinState(PID)
    assert apply(state, lab("la1", T0, "lactate", first, "mmol/L")) == []
    out = apply(state, lab("la2", T0 + hours * HOUR, "lactate", second, "mmol/L")) or []
    rising = [a for a in out if a.rule == LACTATE_RISE_RULE]
    assert [a.status for a in out] == (["open"] if fires else [])  # never critical here
    if fires:
        details = rising[0].details
        assert (details["analyte"], details["value"], details["previous"]) == (
            "lactate", second, first,
        )  # fmt: skip
        assert details["threshold"] == 2.0 and details["unit"] == "mmol/L"
        assert "Surviving Sepsis" in details["source"]


def test_every_lab_alert_names_parameter_value_threshold_and_source() -> None:
    state = TwinState(PID)
    events = [
        lab("k", T0, "potassium", 7.0, "mmol/L"),
        lab("c1", T0, "creatinine", 1.0, "mg/dL"),
        lab("c2", T0 + HOUR, "creatinine", 1.6, "mg/dL"),
        lab("la1", T0, "lactate", 2.4, "mmol/L"),
        lab("la2", T0 + HOUR, "lactate", 4.5, "mmol/L"),
    ]
    alerts = [a for e in events for a in apply(state, e) or []]
    assert sorted(a.rule for a in alerts) == [
        AKI_RULE, "lab.critical.lactate", "lab.critical.potassium", LACTATE_RISE_RULE,
    ]  # fmt: skip
    for a in alerts:
        assert {"analyte", "value", "unit", "threshold", "source"} <= a.details.keys(), a.rule
        assert a.details["source"], a.rule


# -- codec ------------------------------------------------------------------------


def as_stored(state: TwinState) -> TwinState:
    """``state`` with its hot learned models folded into ``learned``, as encode_twin stores it."""
    learned = state.models.encode() if state.models is not None else state.learned
    return dataclasses.replace(state, learned=learned, models=None)


def assert_plain_msgpack(raw: bytes) -> None:
    """``raw`` is what msgpack-python (another MessagePack implementation, the one
    that wrote twins before msgspec) reads and writes back byte for byte."""
    plain = zstandard.ZstdDecompressor().decompress(raw) if raw[:1] == b"\x28" else raw
    assert msgpack.packb(msgpack.unpackb(plain, strict_map_key=False), use_bin_type=True) == plain


@PROPERTY
@given(
    data=st.data(),
    events=event_sequences(max_size=40, span_s=12 * 3600, profiles=True),
)
def test_codec_round_trip(data: st.DataObject, events: list[BaseModel]) -> None:
    """Encode, decode: the same twin; and the next event finds them indistinguishable."""
    state, alerts = apply_all(events, FAST)
    for a in alerts[::2]:
        apply(state, ack(a.alert_id, a.observed_at.timestamp() + MIN), FAST)
    raw = encode_twin(state)
    assert_plain_msgpack(raw)
    back = decode_twin(raw)
    assert back == as_stored(state)
    assert encode_twin(back) == raw
    nxt = data.draw(
        st.one_of(vitals_events("next", T0 + 13 * HOUR), lab_events("next", T0 + 13 * HOUR))
    )
    assert apply(back, nxt, FAST) == apply(state, nxt, FAST)
    assert encode_twin(back) == encode_twin(state)


@settings(max_examples=40, deadline=None)
@given(events=event_sequences(max_size=16, span_s=12 * 3600, profiles=True))
def test_a_twin_encoded_after_every_event_encodes_as_one_built_at_once(
    events: list[BaseModel],
) -> None:
    """What the codec keeps encoded between events (windows, learned models) never goes stale."""
    state = TwinState(PID)
    for i, event in enumerate(events):
        apply(state, event)
        built_at_once, _ = apply_all(events[: i + 1])
        assert encode_twin(state) == encode_twin(built_at_once)


def test_a_twin_that_cannot_be_encoded_leaves_the_next_encoding_intact() -> None:
    """The codec reuses one MessagePack packer: a failed encoding must not leave bytes in it."""
    state, _ = apply_all([vitals(f"v{i}", T0 + i * 15 * MIN, **NORMAL) for i in range(4)])
    before = encode_twin(state)
    broken = dataclasses.replace(state, outcomes={"in_hospital_death": object()})  # type: ignore[dict-item]
    with pytest.raises(TypeError):
        encode_twin(broken)
    assert encode_twin(state) == before


def busy_twin() -> TwinState:
    """A day on the ward: vitals every 15 min, four lab rounds, a profile, open alerts."""
    state = TwinState(PID)
    apply(
        state,
        PatientProfile(
            patient_id=PID, age=78, sex="female", ward="AMU-2", region="north", spo2_scale=2,
            conditions=["copd", "t2dm", "ckd3"], updated_at=ts(T0),
        ),
    )  # fmt: skip
    for i in range(96):
        at = T0 + i * 15 * MIN
        worse = i >= 80  # deteriorates over the last 4 hours
        apply(
            state,
            vitals(
                f"monitor-7:{i:06d}", at,
                heart_rate=72 + (i * 7) % 23 + (30 if worse else 0),
                respiratory_rate=15 + i % 5 + (8 if worse else 0),
                spo2=93 - (3 if worse else 0) + i % 3,
                systolic_bp=118 + (i * 5) % 17,
                diastolic_bp=74 + i % 9,
                temperature_c=round(36.6 + (i % 8) / 10 + (1.2 if worse else 0), 1),
                consciousness="A",
                on_oxygen=worse,
            ),
        )  # fmt: skip
    for r in range(4):
        at = T0 + r * 6 * HOUR + 30 * MIN
        for analyte, value, unit in [
            ("potassium", [4.1, 4.4, 4.8, 5.2][r], "mmol/L"),
            ("sodium", 138.0 - r, "mmol/L"),
            ("glucose", [7.4, 8.1, 8.6, 9.2][r], "mmol/L"),
            ("creatinine", 88.0 + r * 14, "umol/L"),
            ("lactate", [1.4, 2.1, 2.8, 3.5][r], "mmol/L"),
            ("haemoglobin", [11.8, 11.4, 11.0, 10.6][r], "g/dL"),
            ("ph", [7.41, 7.38, 7.35, 7.32][r], "pH"),
        ]:
            apply(state, lab(f"lis-3:{r}:{analyte}", at, analyte, value, unit))
    return state


def test_encoding_leaves_no_stale_learned_bytes() -> None:
    state, _ = apply_all([vitals(f"v{i}", T0 + i * 15 * MIN, **NORMAL) for i in range(4)])
    assert decode_twin(encode_twin(state)) == state


def test_a_twin_that_has_learned_can_be_copied() -> None:
    state, _ = apply_all([vitals(f"v{i}", T0 + i * 15 * MIN, **NORMAL) for i in range(4)])
    assert decode_twin(encode_twin(state.copy())) == as_stored(state)


def test_busy_twin_round_trips() -> None:
    state = busy_twin()
    assert state.events_applied == 96 + 28
    assert state.open_alerts, "the busy twin should carry open episodes too"
    raw = encode_twin(state)
    assert_plain_msgpack(raw)
    assert decode_twin(raw) == as_stored(state)


def test_busy_twin_encodes_within_2_kib() -> None:
    state = busy_twin()
    raw = encode_twin(state)
    unlearned = dataclasses.replace(state, learned=None, models=None)
    print(f"\nbusy twin: {len(raw)} bytes encoded, {len(encode_twin(unlearned))} without models")
    assert len(raw) <= 2048


def test_a_busy_twin_is_stored_compressed_and_one_stored_with_zlib_still_reads() -> None:
    state = busy_twin()
    raw = encode_twin(state)
    plain = zstandard.ZstdDecompressor().decompress(raw)
    assert isinstance(msgpack.unpackb(plain, strict_map_key=False), dict)
    assert raw[:4] == b"\x28\xb5\x2f\xfd", "over 1,536 bytes: a Zstandard frame"
    assert len(plain) > 1536 and len(raw) < len(plain)
    # Twins written before Zstandard (zlib, same codec version) stay readable.
    assert decode_twin(zlib.compress(plain, 1)) == as_stored(state)
    small, _ = apply_all([vitals("v0", T0, **NORMAL)])
    assert encode_twin(small)[:1] in (b"\xde", *(bytes([b]) for b in range(0x80, 0x90)))


@pytest.mark.parametrize(
    "raw",
    [b"\x28\xb5\x2f\xfd\x00\x00garbage", b"\x78\x01garbage", b"\xc1"],
    ids=["zstd", "zlib", "msgpack"],
)
def test_corrupt_stored_twins_raise_codec_error(raw: bytes) -> None:
    with pytest.raises(CodecError):
        decode_twin(raw)


# --- wearables ----------------------------------------------------------------------------------

_WEARABLE_READING = st.fixed_dictionaries(
    {"second": st.integers(0, 4)},
    optional={
        "heart_rate": st.sampled_from([60.0, 61.0, 61.0, 75.5]),
        "steps": st.integers(0, 3),
        "sleep_stage": st.sampled_from(["awake", "light", "deep", "rem"]),
    },
)


@settings(max_examples=200)
@given(
    batches=st.lists(st.lists(_WEARABLE_READING, min_size=1, max_size=6), min_size=1, max_size=4)
)
def test_wearable_batches_set_latest_as_reading_by_reading(
    batches: list[list[dict[str, Any]]],
) -> None:
    # A batch keeps, per parameter, what _set_latest applied to each reading in
    # turn keeps: the newest, and at the same second the larger value.
    from schemas.wearables import WearableEvent
    from twin.apply import _set_latest, apply_wearable

    state, reference = TwinState(PID), TwinState(PID)
    for i, batch in enumerate(batches):
        readings = [
            {"observed_at": ts(r["second"]), **{k: v for k, v in r.items() if k != "second"}}
            for r in batch
            if len(r) > 1
        ]
        if not readings:
            continue
        event = WearableEvent(
            event_id=f"w{i}", patient_id=PID, observed_at=ts(4), device_id="d", readings=readings
        )
        assert apply_wearable(state, event, TwinConfig(), now=10.0) == []
        for r in event.iter_readings():
            at = r.observed_at.timestamp()
            for name in ("heart_rate", "steps", "sleep_stage"):
                if (value := getattr(r, name)) is not None:
                    _set_latest(reference, f"wearable.{name}", value, at, "wearable")
        assert list(state.latest.items()) == list(reference.latest.items())


def test_window_pickles_and_copies_packed_or_unpacked() -> None:
    """A window read back by the codec keeps its buckets packed until first needed;
    pickled or deep-copied (``TwinState.copy``) in either state it is the same window,
    and the copy changes apart from the original."""
    import copy
    import pickle

    from twin.windows import VitalWindow

    w = VitalWindow()
    for t, v in [(0, 70.5), (60, 71.0), (2400, 80.0), (9000, 36.9)]:
        w.add(t, v)
    packed = VitalWindow.from_ints(w.to_ints())
    for original in (packed, w):
        for clone in (copy.deepcopy(original), pickle.loads(pickle.dumps(original))):
            assert clone == w and clone.to_ints() == w.to_ints()
            assert clone.stats(3 * 3600.0) == w.stats(3 * 3600.0)
            clone.add(9060, 40.0)
            assert clone != w and original == w
