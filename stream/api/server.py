"""``twinstream api``: serve the API and dashboard with uvicorn.

Refuses to start without ``TWIN_API_TOKEN`` unless ``--insecure-dev`` is given.
uvicorn's own access log is off: it would log concrete paths (patient ids) and
query strings (the SSE token); :class:`stream.api.app.AccessLog` logs the route
template instead.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

__all__ = ["main_api"]


def _parser(default_host: str, default_port: int) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="twinstream api", description=__doc__)
    p.add_argument("--host", default=default_host, help=f"bind address (default {default_host})")
    p.add_argument("--port", type=int, default=default_port, help=f"(default {default_port})")
    p.add_argument(
        "--insecure-dev",
        action="store_true",
        help="serve without a token when TWIN_API_TOKEN is unset (local development only)",
    )
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    return p


def main_api(argv: Sequence[str] | None = None) -> int:
    """Run the API server until interrupted; returns the exit code."""
    from stream.settings import Settings

    settings = Settings()
    args = _parser(settings.api_host, settings.api_port).parse_args(argv)
    if settings.api_token is None or not settings.api_token.get_secret_value():
        if not args.insecure_dev:
            print(
                "twinstream api: TWIN_API_TOKEN is not set. The API serves patient data and "
                "needs a bearer token: set TWIN_API_TOKEN, or pass --insecure-dev to serve "
                "WITHOUT authentication on a development machine.",
                file=sys.stderr,
            )
            return 2
        print("twinstream api: WARNING: no TWIN_API_TOKEN, serving without auth", file=sys.stderr)

    import uvicorn

    from stream.api.app import create_api

    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    app = create_api(settings, insecure=args.insecure_dev)
    config = uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        access_log=False,
        log_level=args.log_level,
        log_config=None,  # keep the logging configured above
        proxy_headers=False,
    )
    uvicorn.Server(config).run()
    return 0
