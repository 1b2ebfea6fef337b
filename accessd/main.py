"""``accessd``: run the daemon (``--config FILE``, default :data:`DEFAULT_CONFIG`), the demo, or check a config."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from . import __version__
from .config import load_config
from .errors import ConfigError

DEFAULT_CONFIG = "/etc/accessd/accessd.toml"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="accessd", description="Door controller daemon.")
    parser.add_argument("--version", action="version", version=f"accessd {__version__}")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--config", metavar="FILE", help=f"run the daemon in the foreground with this config (default {DEFAULT_CONFIG})")
    mode.add_argument("--demo", action="store_true", help="run with mock GPIO, a simulated reader and demo holders")
    mode.add_argument("--check-config", metavar="FILE", help="validate a config file and exit (0 ok, 2 invalid)")
    parser.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)

    if args.check_config:
        try:
            load_config(args.check_config)
        except ConfigError as exc:
            print(f"accessd: {exc}", file=sys.stderr)
            return 2
        print(f"{args.check_config}: ok")
        return 0
    if args.demo:
        from .demo import run_demo

        return run_demo()
    try:
        config = load_config(args.config or DEFAULT_CONFIG)
    except ConfigError as exc:
        print(f"accessd: {exc}", file=sys.stderr)
        return 2
    return run(config)


def run(config) -> int:
    from .errors import StateFileError
    from .shell.daemon import Daemon

    daemon = Daemon(config)
    try:
        asyncio.run(daemon.run())
    except (ConfigError, StateFileError) as exc:  # a state file that cannot be used: one line, exit 2
        print(f"accessd: {exc}", file=sys.stderr)
        return 2
    except (OSError, RuntimeError) as exc:
        print(f"accessd: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
