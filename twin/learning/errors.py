"""Errors raised when learned state cannot be restored.

One root, :class:`LearnedStateError`, so a caller can catch every learned-state
failure in one place; the message of each says what to do next.
"""

from __future__ import annotations

__all__ = ["LearnedStateError", "UnsupportedLearnedStateVersion"]


class LearnedStateError(ValueError):
    """Stored learned state is truncated, corrupt or inconsistent with this build.

    The twin itself is still usable: drop the learned state (start the
    patient's models afresh, they re-learn within about an hour of vitals),
    or rebuild it by replaying the patient's vitals from the Kafka topic.
    """


class UnsupportedLearnedStateVersion(LearnedStateError):
    """Stored learned state carries a version tag this build does not know.

    It was written by a newer (or much older) twinstream. Upgrade the worker to
    the version that wrote it, or drop the learned state and let it re-learn.
    """
