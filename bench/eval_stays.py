"""The stays of a PhysioNet-2012-format folder, and a tap on their replay that
remembers, per stay, how many events were sent and when its outcome was."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from stream.feeds.physionet import ReplayOptions, ReplayStats, replay_messages
from stream.feeds.producer import FeedMessage

__all__ = ["StayTap", "stay_files"]


def stay_files(folder: Path, limit: int | None = None) -> list[Path]:
    """``<RecordID>.txt`` files in ``folder`` (or its ``set-a/``) in RecordID order.

    >>> stay_files(Path("/nonexistent"))
    []
    """
    if not any(folder.glob("*.txt")) and (folder / "set-a").is_dir():
        folder = folder / "set-a"
    paths = sorted((p for p in folder.glob("*.txt") if p.stem.isdigit()), key=lambda p: int(p.stem))
    return paths if limit is None else paths[:limit]


class StayTap:
    """Passes the replay through, noting each stay's admission order, events and outcome time."""

    def __init__(self) -> None:
        self.order: list[tuple[int, str]] = []
        self.events: Counter[str] = Counter()
        """Vitals and lab messages per patient (what ``events_applied`` counts)."""
        self.outcome_at: dict[str, float] = {}

    def messages(
        self, files: list[Path], options: ReplayOptions, stats: ReplayStats
    ) -> Iterator[FeedMessage]:
        self.order = [(int(p.stem), f"physionet-{int(p.stem)}") for p in files]
        for msg in replay_messages(files, options, stats):
            pid = msg.key.decode()
            if msg.kind == "outcomes":
                self.outcome_at[pid] = max(self.outcome_at.get(pid, msg.at), msg.at)
            elif msg.kind in ("vitals", "labs"):
                self.events[pid] += 1
            yield msg
