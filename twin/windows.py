"""Event-time windows per vital with bounded memory.

Readings fall into 20-minute buckets keyed by their slot (``at // 1200``);
only the 18 slots (6 h) up to the newest reading are kept, so "the last hour"
is the newest three buckets (40 to 60 minutes of readings). A bucket is five
integers: slot, count, and the sum, minimum and maximum in hundredths of the
unit. Integer sums make the buckets exactly the same whatever order readings
arrive in (windows are reorder-independent).

Encoded, a bucket is its slot's distance from the previous bucket, its count
and its sum, plus (only when it holds more than one reading) the distances of
its minimum and maximum from its floor mean: MessagePack packs these small
integers in one to three bytes each, about 5 bytes for a typical bucket.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass
from typing import Any

from twin.frozen import by_fields

__all__ = ["SLOTS", "SLOT_S", "VitalWindow", "WindowStats"]

SLOT_S = 1200
SLOTS = 18
_W = 5  # ints per bucket: slot, n, sum, min, max
_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1  # what an array("i") item holds


@dataclass(frozen=True, slots=True)
class WindowStats:
    """Summary of one vital over a span ending at the newest reading."""

    n: int
    mean: float
    min: float
    max: float
    slope_per_h: float | None

    def __reduce__(self) -> tuple[type[Any], tuple[Any, ...]]:
        return by_fields(self)  # compiled, frozen: see twin/frozen.py


class VitalWindow:
    """Buckets of one vital, sorted by slot: the newest in a short list, the
    others in one flat ``array('i')``.

    Almost every reading of a live feed lands in the newest bucket, so it is
    kept apart (``_last``, five ints): adding a reading there changes five
    list items, and encoding it re-encodes that bucket only, behind the kept
    encoding of the others (``_prefix``). ``data`` (all buckets, flat) is
    built when asked for; change the window only through :meth:`add`.

    A window from :meth:`from_ints` keeps its buckets packed (``_packed``)
    until they are first needed: a twin is decoded with all its windows, and
    most are encoded again, as they came, before any reading changes them.
    """

    __slots__ = ("_closed", "_ints", "_last", "_packed", "_prefix")

    def __init__(self, data: array[int] | None = None) -> None:
        self._closed: array[int] = array("i")
        self._last: list[int] | None = None
        if data:
            self._closed = data[:-_W]
            self._last = list(data[-_W:])
        # to_ints() until the next add(): a twin is encoded after every event.
        self._ints: list[int] | None = None
        # The encoding of the older buckets (``_closed``), until they change.
        self._prefix: list[int] | None = None
        # The flat form the buckets are still to be unpacked from (from_ints).
        self._packed: list[int] | None = None

    def _unpack_buckets(self, flat: list[int]) -> None:
        self._packed = None
        data = _unpack(flat)
        self._closed = data[:-_W]
        self._last = list(data[-_W:]) if data else None

    @property
    def data(self) -> array[int]:
        """All buckets, oldest first: slot, n, sum, min, max (hundredths) each."""
        if self._packed is not None:
            self._unpack_buckets(self._packed)
        last = self._last
        return self._closed + array("i", last) if last is not None else array("i")

    def add(self, at: float, value: float) -> None:
        """Add a reading; readings 6 h or more before the newest are ignored.

        >>> w = VitalWindow()
        >>> for i, v in enumerate([70, 74, 78, 82]):
        ...     w.add(3600.0 * i, v)
        >>> w.stats(4 * 3600.0)
        WindowStats(n=4, mean=76.0, min=70.0, max=82.0, slope_per_h=4.0)
        """
        v = round(value * 100)
        slot = int(at // SLOT_S)
        if self._packed is not None:
            self._unpack_buckets(self._packed)
        last = self._last
        if last is not None and slot == last[0]:  # a live feed's usual case
            total = last[2] + v
            if not _INT_MIN <= total <= _INT_MAX:  # as the array of older buckets would
                raise OverflowError(f"window sum {total} does not fit a signed 32-bit int")
            self._ints = None
            last[1] += 1
            last[2] = total
            if v < last[3]:
                last[3] = v
            elif v > last[4]:
                last[4] = v
            return
        if last is None or slot > last[0]:
            # A new newest bucket (PhysioNet's hourly vitals start one nearly every time).
            bucket = array("i", (slot, 1, v, v, v))  # OverflowError as the older buckets'
            # The window's encoding so far, if kept, is that of the buckets before
            # this one: the older buckets' encoding from now on.
            encoded = self._ints
            self._ints = None
            self._last = bucket.tolist()
            if last is None:
                return
            d = self._closed
            d += array("i", last)
            oldest = slot - SLOTS
            if d[0] <= oldest:
                cut = _W
                end = len(d)
                while cut < end and d[cut] <= oldest:
                    cut += _W
                del d[:cut]
                if encoded is not None:
                    encoded = _drop_first(encoded, cut // _W, d[0]) if d else None
            self._prefix = encoded
            return
        if slot <= last[0] - SLOTS:
            return
        # An older bucket (a reading out of order).
        self._ints = self._prefix = None
        d = self._closed
        for i in range(len(d) - _W, -1, -_W):
            s = d[i]
            if s == slot:
                d[i + 1] += 1
                d[i + 2] += v
                if v < d[i + 3]:
                    d[i + 3] = v
                if v > d[i + 4]:
                    d[i + 4] = v
                return
            if s < slot:
                d[i + _W : i + _W] = array("i", (slot, 1, v, v, v))
                return
        d[0:0] = array("i", (slot, 1, v, v, v))

    @staticmethod
    def _buckets(d: array[int], span_s: float) -> list[tuple[int, int, int, int, int]]:
        first = d[-_W] - int(span_s // SLOT_S) + 1
        rows = [tuple(d[i : i + _W]) for i in range(0, len(d), _W)]
        return [r for r in rows if r[0] >= first]  # type: ignore[misc]

    def stats(self, span_s: float) -> WindowStats | None:
        """Stats over the buckets within ``span_s`` of the newest slot (20-min grain)."""
        d = self.data
        if not d:
            return None
        sel = self._buckets(d, span_s)
        newest = d[-_W]
        n = sum(r[1] for r in sel)
        total = sum(r[2] for r in sel)
        slope = None
        if len(sel) >= 2:
            # Least squares of bucket means against bucket times, weighted by count.
            xs = [(r[0] - newest) * SLOT_S / 3600.0 for r in sel]
            ys = [r[2] / r[1] / 100.0 for r in sel]
            ws = [r[1] for r in sel]
            wsum = sum(ws)
            mx = sum(w * x for w, x in zip(ws, xs, strict=True)) / wsum
            my = sum(w * y for w, y in zip(ws, ys, strict=True)) / wsum
            sxx = sum(w * (x - mx) ** 2 for w, x in zip(ws, xs, strict=True))
            sxy = sum(w * (x - mx) * (y - my) for w, x, y in zip(ws, xs, ys, strict=True))
            slope = round(sxy / sxx, 4) if sxx else None
        return WindowStats(
            n=n,
            mean=round(total / n / 100.0, 2),
            min=min(r[3] for r in sel) / 100.0,
            max=max(r[4] for r in sel) / 100.0,
            slope_per_h=slope,
        )

    def to_ints(self) -> list[int]:
        """Compact flat form (see the module docstring), for MessagePack.

        The list is kept until the next :meth:`add`: read it, do not change it.
        """
        out = self._ints
        if out is not None:
            return out
        if self._packed is not None:
            self._unpack_buckets(self._packed)
        last = self._last
        if last is None:
            out = self._ints = []
            return out
        closed = self._closed
        slot, n, total = last[0], last[1], last[2]
        if closed:
            head = self._prefix
            if head is None:
                head = self._prefix = _encode(closed)
            delta = slot - closed[-_W]
        else:  # a window's first 20 minutes: no older buckets, no prefix kept
            head, delta = [slot], 0
        out = [*head, *_bucket_ints(delta, n, total, last[3], last[4])]
        self._ints = out
        return out

    @classmethod
    def from_ints(cls, flat: list[int]) -> VitalWindow:
        """Inverse of :meth:`to_ints`; ``flat`` is kept, not copied.

        >>> w = VitalWindow()
        >>> for t, v in [(0, 70.5), (60, 71.0), (2400, 80.0), (9000, 36.9)]:
        ...     w.add(t, v)
        >>> VitalWindow.from_ints(w.to_ints()) == w
        True
        >>> v = VitalWindow.from_ints(w.to_ints())
        >>> v.add(9060, 37.0), w.add(9060, 37.0)
        (None, None)
        >>> v.to_ints() == w.to_ints(), v == w
        (True, True)
        """
        window = cls()
        window._ints = window._packed = flat  # unpacked when first needed
        return window

    def __reduce__(self) -> tuple[Any, tuple[list[int]]]:
        # Pickled and deep-copied as its flat form (``TwinState.copy``): a compiled
        # class has no instance ``__dict__`` for pickle's default to restore. The
        # flat form is never changed in place, so a copy may share it.
        return VitalWindow.from_ints, (self.to_ints(),)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, VitalWindow) and self.data == other.data

    def __repr__(self) -> str:
        return f"VitalWindow({len(self.data) // _W} buckets)"


def _drop_first(flat: list[int], count: int, first_slot: int) -> list[int]:
    """The flat form of :meth:`VitalWindow.to_ints` without its ``count`` oldest
    buckets, whose next bucket is at ``first_slot``.

    >>> w = VitalWindow()
    >>> for t, v in [(0, 70.5), (60, 71.0), (2400, 80.0), (9000, 36.9)]:
    ...     w.add(t, v)
    >>> flat = w.to_ints()
    >>> _drop_first(flat, 1, 2) == VitalWindow(w.data[_W:]).to_ints()
    True
    """
    i = 1  # where the oldest bucket's slot distance is
    for _ in range(count):
        i += 5 if flat[i + 1] > 1 else 3
    return [first_slot, 0, *flat[i + 1 :]]


def _encode(d: array[int]) -> list[int]:
    """The flat form of :meth:`VitalWindow.to_ints` of the buckets ``d``."""
    if not d:
        return []
    prev = d[0]
    out = [prev]
    for i in range(0, len(d), _W):
        slot = d[i]
        out += _bucket_ints(slot - prev, d[i + 1], d[i + 2], d[i + 3], d[i + 4])
        prev = slot
    return out


def _bucket_ints(delta: int, n: int, total: int, low: int, high: int) -> tuple[int, ...]:
    """One bucket of the flat form: its slot's distance from the previous bucket, its
    count and sum, and (when it holds more than one reading) the distances of its
    minimum and maximum from its floor mean.

    >>> _bucket_ints(3, 1, 7050, 7050, 7050), _bucket_ints(0, 2, 14150, 7050, 7100)
    ((3, 1, 7050), (0, 2, 14150, 25, 25))
    """
    if n > 1:
        floor_mean = total // n
        return (delta, n, total, floor_mean - low, high - floor_mean)
    return (delta, n, total)


def _unpack(flat: list[int]) -> array[int]:
    """The buckets of :meth:`VitalWindow.to_ints`'s form, as ``VitalWindow.data``."""
    rows: list[int] = []  # one array built at the end: cheaper than extending it
    if flat:
        slot = flat[0]
        i = 1
        end = len(flat)
        while i < end:
            slot += flat[i]
            n = flat[i + 1]
            total = flat[i + 2]
            if n > 1:
                floor_mean = total // n
                rows += (slot, n, total, floor_mean - flat[i + 3], floor_mean + flat[i + 4])
                i += 5
            else:
                rows += (slot, n, total, total, total)
                i += 3
    return array("i", rows)
