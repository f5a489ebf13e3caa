"""Population rollup: NEWS2 bands per ward and region, workload, small-number suppression.

Counts from 1 to ``min_group - 1`` are reported as ``"<min_group"`` so a
small group cannot single out a patient. Within a row, when exactly one cell
is suppressed the next smallest non-zero cell is suppressed too (otherwise the
row total would give it away); a group whose total is below ``min_group`` is
suppressed whole.

>>> from stream.api.population import suppress
>>> suppress({"low": 12, "medium": 2, "high": 6}, min_group=5)
{'low': 12, 'medium': '<5', 'high': '<5'}
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from stream.api.models import Band, BandCounts, PopulationGroup, PopulationView

__all__ = ["BANDS", "TwinRollupRow", "rollup", "suppress", "suppress_one"]

BANDS: tuple[Band, ...] = ("high", "medium", "low-medium", "low", "unknown")
NO_FORECASTS = "forecasts not available: no learned state yet"


@dataclass(frozen=True, slots=True)
class TwinRollupRow:
    """What the rollup needs of one twin."""

    ward: str | None
    region: str | None
    band: Band
    monitoring_interval_minutes: int | None
    """NEWS2 response frequency; 0 is continuous, None without vitals."""
    deteriorating_next_hour: bool | None = None
    """From learned forecasts; None while there are none."""


def suppress_one(n: int, min_group: int) -> int | str:
    """``n`` itself when 0 or at least ``min_group``, else ``"<min_group"``."""
    return n if n == 0 or n >= min_group else f"<{min_group}"


def suppress(counts: dict[str, int], min_group: int) -> BandCounts:
    """Suppress small cells of one row, with one complementary cell when needed."""
    out: BandCounts = {k: suppress_one(v, min_group) for k, v in counts.items()}
    hidden = [k for k, v in out.items() if isinstance(v, str)]
    if len(hidden) == 1:
        shown = sorted((v, k) for k, v in counts.items() if v > 0 and k not in hidden)
        if shown:
            out[shown[0][1]] = f"<{min_group}"
    return out


def _group(name: str, rows: list[TwinRollupRow], min_group: int) -> PopulationGroup:
    bands = Counter(r.band for r in rows)
    per_hour = _per_hour(rows)
    continuous = sum(1 for r in rows if r.monitoring_interval_minutes == 0)
    if len(rows) < min_group:
        hidden = f"<{min_group}"
        return PopulationGroup(
            name=name,
            total=hidden,
            bands=dict.fromkeys(BANDS, hidden),
            observations_per_hour=per_hour,
            continuous=hidden,
        )
    return PopulationGroup(
        name=name,
        total=len(rows),
        bands=suppress({b: bands.get(b, 0) for b in BANDS}, min_group),
        observations_per_hour=per_hour,
        continuous=suppress_one(continuous, min_group),
    )


def _per_hour(rows: Iterable[TwinRollupRow]) -> float:
    """Observation sets per hour implied by each twin's NEWS2 response (continuous excluded)."""
    total = sum(60.0 / r.monitoring_interval_minutes for r in rows if r.monitoring_interval_minutes)
    return round(total, 2)


def rollup(rows: Iterable[TwinRollupRow], min_group: int) -> PopulationView:
    """The population view of ``rows``.

    >>> rows = [TwinRollupRow("A", "n", "low", 720)] * 6 + [TwinRollupRow("B", "n", "high", 0)]
    >>> v = rollup(rows, min_group=5)
    >>> [(g.name, g.total) for g in v.wards], v.regions[0].total, v.continuous_monitoring
    ([('A', 6), ('B', '<5')], 7, '<5')
    """
    rows = list(rows)
    wards: dict[str, list[TwinRollupRow]] = defaultdict(list)
    regions: dict[str, list[TwinRollupRow]] = defaultdict(list)
    for r in rows:
        wards[r.ward or "(none)"].append(r)
        regions[r.region or "(none)"].append(r)
    bands = Counter(r.band for r in rows)
    forecasts = [r.deteriorating_next_hour for r in rows if r.deteriorating_next_hour is not None]
    return PopulationView(
        twins=len(rows),
        min_group=min_group,
        bands=suppress({b: bands.get(b, 0) for b in BANDS}, min_group),
        wards=[_group(k, v, min_group) for k, v in sorted(wards.items())],
        regions=[_group(k, v, min_group) for k, v in sorted(regions.items())],
        observations_per_hour=_per_hour(rows),
        continuous_monitoring=suppress_one(
            sum(1 for r in rows if r.monitoring_interval_minutes == 0), min_group
        ),
        predicted_deteriorations_next_hour=sum(forecasts) if forecasts else None,
        forecasts="available" if forecasts else NO_FORECASTS,
    )
