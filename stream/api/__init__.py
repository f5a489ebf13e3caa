"""HTTP API and dashboard of twinstream (FastAPI): twins, alerts, population, metrics.

``create_api(settings, store=None, producer=None)`` builds the ASGI app;
``main_api(argv)`` serves it (``twinstream api``); ``main_alerts(argv)`` runs the
alert subscribers (``twinstream alerts tail|forward``). They are imported on first
use, so the subscribers do not load the web stack and the twin core.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from stream.api.app import create_api
    from stream.api.server import main_api
    from stream.api.subscribers import main_alerts

__all__ = ["create_api", "main_alerts", "main_api"]

_WHERE = {
    "create_api": "stream.api.app",
    "main_api": "stream.api.server",
    "main_alerts": "stream.api.subscribers",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'stream.api' has no attribute {name!r}")
