"""The ``agentlightning`` command. Each subcommand lives in its own module with
``register(subparsers)``; this file only lists them, so adding one touches one line here."""
from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import Optional, Sequence

# Modules that provide subcommands (each defines ``register(subparsers)``); optional ones may be
# missing their extras, and then their commands say what to install.
COMMAND_MODULES = [
    "agentlightning.core.cli_serve",
    "agentlightning.core.cli_inspect",
    "agentlightning.core.lightningrl.cli",
    "agentlightning.trainer.cli",
    "agentlightning.trainer.train_cli",
    "agentlightning.examples.cli",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="agentlightning", description="Agent Lightning: RL for the agents you already run.")
    parser.add_argument("--log-level", default="WARNING", help="DEBUG, INFO, WARNING (default), ERROR")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name and name.startswith(exc.name):
                continue  # the module itself is not there (yet)
            raise
        module.register(sub)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=getattr(logging, str(args.log_level).upper(), logging.WARNING),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
