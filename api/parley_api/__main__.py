"""Entry point: `python -m parley_api` loads settings once, configures logging and serves."""

from __future__ import annotations

import sys

from parley_api.main import create_app
from parley_api.plumbing.server import serve
from parley_core.logging import get_logger
from parley_core.settings import ApiSettings, settings_for_main


def main() -> int:
    """Run the API until SIGTERM/SIGINT; exit 2 on bad configuration."""
    settings = settings_for_main(ApiSettings, program="parley-api")
    get_logger("parley_api").info(
        "api_listening",
        host=settings.api_host,
        port=settings.api_port,
        management_port=settings.api_management_port,
    )
    try:
        serve(
            create_app(settings),
            host=settings.api_host,
            port=settings.api_port,
            management_port=settings.api_management_port,
            delay_seconds=settings.shutdown_delay_seconds,
            timeout_seconds=settings.shutdown_timeout_seconds,
        )
    except OSError as exc:  # a port already taken, an address not on this host
        print(f"parley-api: cannot listen on {settings.api_host}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
