"""`bess-forecaster` command line: one module per sub-command under forecaster.commands.

Each command module defines HELP (one line), configure(parser) and main(args) -> exit code.
Exit codes: 0 ok, 1 runtime failure, 2 bad configuration or usage.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
from collections.abc import Sequence

COMMANDS = {
    "serve": "forecaster.commands.serve",
    "predict": "forecaster.commands.predict",
    "score": "forecaster.commands.score",
    "finetune": "forecaster.commands.finetune",
    "models": "forecaster.commands.models",
    "promote": "forecaster.commands.promote",
    "rollback": "forecaster.commands.rollback",
    "backtest": "forecaster.commands.backtest",
    "report": "forecaster.commands.report",
}


def build_parser(commands: dict[str, str]) -> argparse.ArgumentParser:
    """The top-level parser with one sub-parser per command module."""
    parser = argparse.ArgumentParser(prog="bess-forecaster", description=__doc__.splitlines()[0])
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module_name in commands.items():
        if importlib.util.find_spec(module_name) is None:
            continue  # command not built yet
        module = importlib.import_module(module_name)
        sub = subparsers.add_parser(name, help=module.HELP, description=module.HELP)
        module.configure(sub)
        sub.set_defaults(_main=module.main)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `bess-forecaster`."""
    args = build_parser(COMMANDS).parse_args(argv)
    return int(args._main(args))


if __name__ == "__main__":
    sys.exit(main())
