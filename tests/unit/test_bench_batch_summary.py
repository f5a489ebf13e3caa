"""The latency phase's one-line summary of worker 0's micro-batches."""

import pytest

from bench.phases import batch_summary

pytestmark = pytest.mark.unit


def test_the_summary_gives_the_record_wait_in_batch_times() -> None:
    line = batch_summary(
        {"mean_batch_size": 84.0, "mean_batch_s": 0.040, "mean_record_wait_s": 0.080}
    )
    assert line == (
        "batches of 84.0 events, 40 ms each, oldest record 80 ms old at the start (2.0 batch times)"
    )


def test_a_batch_that_waited_one_batch_time_reads_one() -> None:
    line = batch_summary(
        {"mean_batch_size": 5.0, "mean_batch_s": 0.006, "mean_record_wait_s": 0.006}
    )
    assert line.endswith("(1.0 batch times)")


@pytest.mark.parametrize(
    "metrics",
    [{}, {"mean_batch_size": 3.0, "mean_batch_s": 0.01}, {"mean_record_wait_s": 0.01}],
)
def test_missing_metrics_are_named_not_guessed(metrics: dict[str, float]) -> None:
    assert batch_summary(metrics) == "no batch metrics"


def test_a_zero_batch_time_gives_no_ratio() -> None:
    line = batch_summary({"mean_batch_size": 1.0, "mean_batch_s": 0.0, "mean_record_wait_s": 0.002})
    assert "batch times" not in line and "2 ms old" in line
