"""HTTP API and dashboard of twinstream (FastAPI): twins, alerts, population, metrics.

``create_api(settings, store=None, producer=None)`` builds the ASGI app;
``main_api(argv)`` serves it (``twinstream api``).
"""

from __future__ import annotations

from stream.api.app import create_api
from stream.api.server import main_api

__all__ = ["create_api", "main_api"]
