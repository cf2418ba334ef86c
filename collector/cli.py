"""`bess-collector` command line: one module per sub-command under collector.commands.

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
    "run": "collector.commands.run",
    "check-config": "collector.commands.check_config",
    "discover": "collector.commands.discover",
    "simulate": "collector.commands.simulate",
    "import": "collector.commands.importer",
    "dead-letters": "collector.commands.dead_letters",
}


def build_parser(commands: dict[str, str]) -> argparse.ArgumentParser:
    """The top-level parser with one sub-parser per command module."""
    parser = argparse.ArgumentParser(prog="bess-collector", description=__doc__.splitlines()[0])
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
    """Entry point of `bess-collector`."""
    args = build_parser(COMMANDS).parse_args(argv)
    return int(args._main(args))


if __name__ == "__main__":
    sys.exit(main())
