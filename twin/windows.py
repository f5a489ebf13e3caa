"""Event-time windows per vital with bounded memory.

Readings fall into 15-minute buckets keyed by their slot (``at // 900``);
only the 24 slots (6 h) up to the newest reading are kept. Sums are kept as
integers of hundredths, so adding the same readings in any order gives the
same buckets exactly (windows are reorder-independent).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SLOTS", "SLOT_S", "VitalWindow", "WindowStats"]

SLOT_S = 900
SLOTS = 24


@dataclass(frozen=True, slots=True)
class WindowStats:
    """Summary of one vital over a span ending at the newest reading."""

    n: int
    mean: float
    min: float
    max: float
    slope_per_h: float | None


class VitalWindow:
    """Buckets of one vital: slot -> [count, sum of hundredths, min, max]."""

    __slots__ = ("buckets",)

    def __init__(self, buckets: dict[int, list[float]] | None = None) -> None:
        self.buckets: dict[int, list[float]] = buckets or {}

    def add(self, at: float, value: float) -> None:
        """Add a reading; readings older than 6 h before the newest are ignored.

        >>> w = VitalWindow()
        >>> for i, v in enumerate([70, 74, 78, 82]):
        ...     w.add(3600.0 * i, v)
        >>> w.stats(4 * 3600.0)
        WindowStats(n=4, mean=76.0, min=70.0, max=82.0, slope_per_h=4.0)
        """
        value = float(value)
        slot = int(at // SLOT_S)
        newest = max(self.buckets, default=slot)
        if slot <= newest - SLOTS:
            return
        b = self.buckets.get(slot)
        if b is None:
            self.buckets[slot] = [1, round(value * 100), value, value]
        else:
            b[0] += 1
            b[1] += round(value * 100)
            b[2] = min(b[2], value)
            b[3] = max(b[3], value)
        if slot > newest:
            for old in [s for s in self.buckets if s <= slot - SLOTS]:
                del self.buckets[old]

    def stats(self, span_s: float) -> WindowStats | None:
        """Stats over the buckets within ``span_s`` of the newest slot (15-min grain)."""
        if not self.buckets:
            return None
        newest = max(self.buckets)
        first = newest - int(span_s // SLOT_S) + 1
        sel = [(s, b) for s, b in self.buckets.items() if s >= first]
        n = int(sum(b[0] for _, b in sel))
        total = sum(b[1] for _, b in sel)
        slope = None
        if len(sel) >= 2:
            # Least squares of bucket means against bucket times, weighted by count.
            xs = [(s - newest) * SLOT_S / 3600.0 for s, _ in sel]
            ys = [b[1] / b[0] / 100.0 for _, b in sel]
            ws = [b[0] for _, b in sel]
            wsum = sum(ws)
            mx = sum(w * x for w, x in zip(ws, xs, strict=True)) / wsum
            my = sum(w * y for w, y in zip(ws, ys, strict=True)) / wsum
            sxx = sum(w * (x - mx) ** 2 for w, x in zip(ws, xs, strict=True))
            sxy = sum(w * (x - mx) * (y - my) for w, x, y in zip(ws, xs, ys, strict=True))
            slope = round(sxy / sxx, 4) if sxx else None
        return WindowStats(
            n=n,
            mean=round(total / n / 100.0, 2),
            min=min(b[2] for _, b in sel),
            max=max(b[3] for _, b in sel),
            slope_per_h=slope,
        )

    def to_list(self) -> list[list[float]]:
        """Compact form: [[slot, n, sum, min, max], ...] sorted by slot."""
        return [[s, *b] for s, b in sorted(self.buckets.items())]

    @classmethod
    def from_list(cls, rows: list[list[float]]) -> VitalWindow:
        return cls({int(r[0]): list(r[1:]) for r in rows})

    def __eq__(self, other: object) -> bool:
        return isinstance(other, VitalWindow) and self.buckets == other.buckets

    def __repr__(self) -> str:
        return f"VitalWindow({len(self.buckets)} buckets)"
