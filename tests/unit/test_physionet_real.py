"""The PhysioNet 2012 adapter on the real data (20 stays), when ``../shared/data`` is present.

Silva I et al. Comput Cardiol 2012;39:245-248; PhysioNet, ODC-By 1.0.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from pydantic import BaseModel

from schemas.decode import Rejection, decode
from schemas.labs import LabEvent
from schemas.outcomes import OutcomeEvent
from schemas.profiles import PatientProfile
from schemas.vitals import VitalsEvent
from stream.feeds.physionet import (
    ReplayOptions,
    ReplayStats,
    load_outcomes,
    replay_messages,
    stay_paths,
)

pytestmark = pytest.mark.unit

DATA = Path(__file__).parents[2] / ".." / "shared" / "data" / "physionet2012"
STAYS = 20
CONTRACTS: dict[str, type[BaseModel]] = {
    "vitals": VitalsEvent,
    "labs": LabEvent,
    "profiles": PatientProfile,
    "outcomes": OutcomeEvent,
}


@pytest.fixture(scope="module")
def data_dir() -> Path:
    if not (DATA / "set-a").is_dir():
        pytest.skip(
            "../shared/data/physionet2012 not present: the real-data check of the "
            "PhysioNet 2012 adapter is skipped"
        )
    return DATA


def test_twenty_real_stays_map_and_validate(data_dir: Path) -> None:
    paths = stay_paths(data_dir, STAYS)
    assert len(paths) == STAYS
    outcomes = load_outcomes(data_dir / "Outcomes-a.txt")
    assert len(outcomes) == 4000
    assert sum(row["In-hospital_death"] for row in outcomes.values()) == 554
    stats = ReplayStats()
    options = ReplayOptions(base=datetime(2026, 1, 1, tzinfo=UTC), outcomes=outcomes)
    messages = list(replay_messages(paths, options, stats))

    kinds = Counter(m.kind for m in messages)
    assert kinds["profiles"] == STAYS
    assert kinds["outcomes"] >= STAYS  # in_hospital_death, plus length of stay when known
    assert kinds["vitals"] >= STAYS * 20  # charted every 30-60 min for up to 48 h
    assert kinds["labs"] >= STAYS * 5
    assert {m.key for m in messages} == {f"physionet-{p.stem}".encode() for p in paths}
    assert [m.at for m in messages] == sorted(m.at for m in messages)
    span = max(m.at for m in messages) - options.base.timestamp()
    assert 24 * 3600 < span <= 48 * 3600
    assert stats.stays == STAYS and stats.bad_rows == 0

    ids = [orjson.loads(m.value).get("event_id") for m in messages]
    assert len({i for i in ids if i}) == sum(1 for i in ids if i)  # event ids are unique

    reasons: Counter[str] = Counter()
    for m in messages:
        result = decode(CONTRACTS[m.kind], m.value)
        if isinstance(result, Rejection):
            reasons[f"{m.kind}: {result.reason}: {result.error}"] += 1
    valid = 1 - sum(reasons.values()) / len(messages)
    report = "\n".join(f"{n:4d}  {why}" for why, n in reasons.most_common())
    print(f"\n{len(messages)} messages, {valid:.2%} valid; rejections:\n{report or '  none'}")
    assert valid >= 0.95, report
    # Every rejection is an implausible value passed through on purpose, and counted.
    assert all(": implausible: " in why for why in reasons)
    assert sum(reasons.values()) <= sum(stats.implausible.values())


def test_clean_mode_leaves_nothing_to_reject(data_dir: Path) -> None:
    stats = ReplayStats()
    options = ReplayOptions(base=datetime(2026, 1, 1, tzinfo=UTC), clean=True)
    messages = list(replay_messages(stay_paths(data_dir, STAYS), options, stats))
    rejected = [m for m in messages if isinstance(decode(CONTRACTS[m.kind], m.value), Rejection)]
    assert rejected == []
    assert sum(stats.dropped.values()) >= sum(stats.implausible.values())
