"""Issue #5 smoke test: ``python -m bench.evaluate`` end to end on 40 real stays.

The evaluation runs as its own process (as a user would run it) against the
session's Kafka and Redis (``--kafka``/``--redis``), replays the first 40
PhysioNet 2012 stays with their outcomes through a real worker, and writes
its report into a temporary folder. The figures of 40 stays mean little; the
test checks that every part of the report is there and consistent.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import Services

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / ".." / "shared" / "data" / "physionet2012"
STAYS = 40


@pytest.mark.timeout(180)
def test_evaluation_end_to_end(services: Services, tmp_path: Path) -> None:
    if not (DATA / "set-a").is_dir() or not (DATA / "Outcomes-a.txt").is_file():
        pytest.skip("../shared/data/physionet2012 not present: evaluation smoke test skipped")
    env = {k: v for k, v in os.environ.items() if k != "TWIN_PSEUDONYM_KEY"}
    argv = [sys.executable, "-m", "bench.evaluate", "--limit", str(STAYS), "--out", str(tmp_path)]
    argv += ["--kafka", services.kafka_bootstrap, "--redis", services.redis_url]
    argv += ["--data", str(DATA / "set-a"), "--resamples", "200"]
    done = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=170)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    report = json.loads((tmp_path / "evaluation.json").read_text())
    assert report["stays"] == STAYS
    for name in ("max_news2", "saps1", "online_risk", "online_risk_second_half"):
        value = report["auroc"][name]
        detail = report["auroc_detail"][name]
        if value is None:
            assert detail["reason"], f"{name}: no AUROC and no reason"
        else:
            assert 0.0 <= value <= 1.0, (name, value)
            assert detail["n"] > 0
    assert (
        report["auroc_detail"]["saps1"]["n"] + report["auroc_detail"]["saps1"]["excluded"] == STAYS
    )

    rates = report["alerts_per_patient_day"]
    assert rates, "40 ICU stays raise some alerts"
    assert all(set(r) >= {"open", "escalated", "reminder"} for r in rates.values())
    assert report["patient_days"] > 0
    assert "share_then_news2_ge5" in report["predicted_deterioration"]

    sizes = report["redis_bytes_per_twin"]
    assert sizes["median"] > 0 and sizes["max"] >= sizes["median"]
    assert report["encoded_twin_bytes"]["median"] > 0
    assert report["pipeline"]["twins_read"] == STAYS

    sent = sum(report["pipeline"]["sent"].values())
    assert report["pipeline"]["counters"]["consumed"] == sent
    assert report["throughput"]["events"] == sent
    assert report["throughput"]["worker_cpu_us_per_event"] > 0
    check = report["prequential_check"]
    assert check["risk_scored_after_outcome_time"] == 0
    assert check["events_after_outcome_time"] == 0
    assert 0 <= check["events_sent_but_not_applied"] <= check["dead_lettered"]
    assert "Silva" in report["data"]["source"]

    png = (tmp_path / "evaluation_roc.png").read_bytes()
    assert png.startswith(b"\x89PNG")
