"""The command-line frame both services share: one module per sub-command.

A command module defines HELP (one line), configure(parser) and main(args) -> exit code.
Exit codes: 0 ok, 1 runtime failure, 2 bad configuration or usage.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Mapping, Sequence


def build_parser(prog: str, description: str, commands: Mapping[str, str]) -> argparse.ArgumentParser:
    """The top-level parser with one sub-parser per command module (every module must import)."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module_name in commands.items():
        module = importlib.import_module(module_name)
        sub = subparsers.add_parser(name, help=module.HELP, description=module.HELP)
        module.configure(sub)
        sub.set_defaults(_main=module.main)
    return parser


def run(prog: str, description: str, commands: Mapping[str, str], argv: Sequence[str] | None = None) -> int:
    """Parse argv and run the chosen command; returns its exit code."""
    args = build_parser(prog, description, commands).parse_args(argv)
    return int(args._main(args))
