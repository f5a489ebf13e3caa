"""Discrimination metrics for the evaluation, in numpy only (no scikit-learn here).

AUROC is the Mann-Whitney U statistic divided by ``n_pos * n_neg`` (ties
count one half), the ROC curve is swept over the distinct scores, and the
95 % interval is a percentile bootstrap over stays with a fixed seed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["Discrimination", "auroc", "bootstrap_ci", "discrimination", "quantiles", "roc_curve"]


def auroc(scores: ArrayLike, labels: ArrayLike) -> float | None:
    """Probability that a random positive scores above a random negative (ties: 1/2).

    None when either class is empty.

    >>> auroc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1])
    0.75
    >>> auroc([0.5, 0.5, 0.5], [0, 1, 1])
    0.5
    >>> auroc([0.2, 0.3], [1, 1]) is None
    True
    """
    s = np.asarray(scores, dtype=float)
    y = np.asarray(labels, dtype=bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    ranks = _average_ranks(s)
    u = ranks[y].sum() - n_pos * (n_pos + 1) / 2
    return float(u / (n_pos * n_neg))


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks, ties sharing their average rank."""
    order = np.argsort(values, kind="mergesort")
    sorted_values = values[order]
    ranks = np.empty(len(values), dtype=float)
    # Start and end of each run of equal values in sorted order.
    edges = np.flatnonzero(np.diff(sorted_values)) + 1
    starts = np.concatenate(([0], edges))
    ends = np.concatenate((edges, [len(values)]))
    averaged = (starts + ends + 1) / 2.0  # mean of ranks starts+1 .. ends
    ranks[order] = np.repeat(averaged, ends - starts)
    return ranks


def roc_curve(scores: Sequence[float], labels: Sequence[int]) -> tuple[list[float], list[float]]:
    """False- and true-positive rates at every distinct threshold, from (0, 0) to (1, 1).

    >>> roc_curve([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1])
    ([0.0, 0.0, 0.5, 0.5, 1.0], [0.0, 0.5, 0.5, 1.0, 1.0])
    """
    s = np.asarray(scores, dtype=float)
    y = np.asarray(labels, dtype=bool)
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    last_of_value = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]
    tp = np.cumsum(y)[last_of_value]
    fp = np.cumsum(~y)[last_of_value]
    n_pos, n_neg = max(int(y.sum()), 1), max(int((~y).sum()), 1)
    fpr = np.r_[0.0, fp / n_neg].tolist()
    tpr = np.r_[0.0, tp / n_pos].tolist()
    return fpr, tpr


def bootstrap_ci(
    scores: Sequence[float],
    labels: Sequence[int],
    *,
    resamples: int = 1000,
    seed: int = 2012,
) -> tuple[float, float] | None:
    """Percentile 95 % interval of the AUROC over stays resampled with replacement.

    >>> lo, hi = bootstrap_ci([0.1, 0.4, 0.35, 0.8, 0.9, 0.2], [0, 0, 1, 1, 1, 0])
    >>> 0.0 <= lo <= hi <= 1.0
    True
    """
    s = np.asarray(scores, dtype=float)
    y = np.asarray(labels, dtype=int)
    if len(s) == 0:
        return None
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(resamples):
        pick = rng.integers(0, len(s), len(s))
        value = auroc(s[pick], y[pick])
        if value is not None:
            values.append(value)
    if not values:
        return None
    lo, hi = np.percentile(values, [2.5, 97.5])
    return round(float(lo), 4), round(float(hi), 4)


@dataclass(frozen=True, slots=True)
class Discrimination:
    """An AUROC with its interval, counts, and why it is missing when it is."""

    auroc: float | None
    ci95: tuple[float, float] | None
    n: int
    positives: int
    reason: str | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "auroc": self.auroc,
            "ci95": list(self.ci95) if self.ci95 else None,
            "n": self.n,
            "positives": self.positives,
            "reason": self.reason,
        }


def discrimination(
    scores: Sequence[float], labels: Sequence[int], *, resamples: int = 1000
) -> Discrimination:
    """AUROC, bootstrap interval and counts; a reason instead of a value when undefined.

    >>> discrimination([0.3, 0.7], [1, 1]).reason
    'only one class among 2 stays'
    """
    n, positives = len(labels), int(sum(labels))
    value = auroc(scores, labels)
    if value is None:
        reason = "no stays" if n == 0 else f"only one class among {n} stays"
        return Discrimination(None, None, n, positives, reason)
    ci = bootstrap_ci(scores, labels, resamples=resamples)
    return Discrimination(round(value, 4), ci, n, positives)


def quantiles(values: Sequence[float]) -> dict[str, float | None]:
    """Median, 95th percentile and maximum (None for no values).

    >>> quantiles([1, 2, 3, 4, 100])
    {'median': 3.0, 'p95': 80.8, 'max': 100.0}
    """
    if len(values) == 0:
        return {"median": None, "p95": None, "max": None}
    a = np.asarray(values, dtype=float)
    return {
        "median": round(float(np.median(a)), 1),
        "p95": round(float(np.percentile(a, 95)), 1),
        "max": round(float(a.max()), 1),
    }
