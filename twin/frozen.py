"""Pickling and copying the core's frozen dataclasses.

Compiled with mypyc (``twin/_native.py``), a frozen dataclass is restored by
pickle and ``copy.deepcopy`` attribute by attribute, which its frozen
``__setattr__`` refuses. Their ``__reduce__`` returns :func:`by_fields` instead:
rebuilt through the constructor, compiled or not. ``TwinState.copy`` (the
what-if API) deep-copies twins holding such results.
"""

from __future__ import annotations

import dataclasses
from typing import Any

__all__ = ["by_fields"]


def by_fields(obj: Any) -> tuple[type[Any], tuple[Any, ...]]:
    """``obj``'s class and the values of its constructor's fields, for ``__reduce__``
    (fields left out of ``__init__`` are derived again by ``__post_init__``).

    >>> import copy, pickle
    >>> from twin.learning.codec import LearningConfig
    >>> from twin.scores import QsofaResult
    >>> q = QsofaResult(1, {"gcs": True}, (), False, False)
    >>> copy.deepcopy(q) == q == pickle.loads(pickle.dumps(q))
    True
    >>> c = copy.deepcopy(LearningConfig(horizons_s=(60,)))
    >>> c == LearningConfig(horizons_s=(60,)) and c.vital_params("spo2") is not None
    True
    """
    return type(obj), tuple(getattr(obj, f.name) for f in dataclasses.fields(obj) if f.init)
