"""``qbo-emulator``: run the emulator as its own process under uvicorn.

    qbo-emulator --host 127.0.0.1 --port 8765 [--state-file PATH] [--seed-demo N] [--latency-median-ms MS]
                 [--latency-p99-ms MS] [--no-limits] [--throttle-body xml|json] [--webhook-compression F]
                 [--refresh-grace-s S] [--allow-public] [--log-level debug]

Binds loopback by default and refuses a non-loopback address unless ``--allow-public`` is given (the admin API
has no authentication). ``GET /health`` answers once it serves.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

import uvicorn

from qbo_emulator.app import create_app
from qbo_emulator.config import EmulatorConfig, LatencyConfig, LimitsConfig, OAuthConfig, WebhookConfig
from qbo_emulator.logs import install_log_filters

__all__ = ["build_config", "main", "parse_args"]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="qbo-emulator", description="QuickBooks Online API emulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--state-file", type=Path, default=None, help="SQLite file; state survives restarts")
    parser.add_argument("--seed-demo", type=int, default=0, metavar="N", help="seed N demo companies")
    parser.add_argument("--latency-median-ms", type=float, default=0.0)
    parser.add_argument("--latency-p99-ms", type=float, default=None)
    parser.add_argument("--latency-seed", type=int, default=0)
    parser.add_argument("--no-limits", action="store_true", help="disable throttling (429s)")
    parser.add_argument("--throttle-body", choices=["xml", "json"], default="xml")
    parser.add_argument("--webhook-compression", type=float, default=1.0)
    parser.add_argument("--webhook-window-s", type=float, default=0.2)
    parser.add_argument("--refresh-grace-s", type=int, default=0)
    parser.add_argument("--public-base-url", default=None)
    parser.add_argument("--allow-public", action="store_true", help="allow binding a non-loopback address")
    parser.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    return parser.parse_args(argv)


def build_config(args: argparse.Namespace) -> EmulatorConfig:
    return EmulatorConfig(
        state_file=args.state_file,
        seed_demo=args.seed_demo,
        public_base_url=args.public_base_url,
        latency=LatencyConfig(median_ms=args.latency_median_ms, p99_ms=args.latency_p99_ms, seed=args.latency_seed),
        limits=LimitsConfig(enabled=not args.no_limits, throttle_body=args.throttle_body),
        webhooks=WebhookConfig(compression=args.webhook_compression, aggregation_window_s=args.webhook_window_s),
        oauth=OAuthConfig(superseded_grace_s=args.refresh_grace_s),
    )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    if not _is_loopback(args.host) and not args.allow_public:
        sys.exit(f"refusing to bind {args.host}: the admin API is unauthenticated (pass --allow-public)")
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    install_log_filters()
    app = create_app(build_config(args))
    config = uvicorn.Config(app, host=args.host, port=args.port, log_level=args.log_level, access_log=False)
    server = uvicorn.Server(config)
    print(f"qbo-emulator starting on http://{args.host}:{args.port}", flush=True)  # noqa: T201
    server.run()


if __name__ == "__main__":
    main()
