"""`bess-collector`: read the Cerbo GX into InfluxDB at 1 Hz (plus simulate, discover, import, dead letters)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from bess_common import cli

COMMANDS = {
    "run": "collector.commands.run",
    "check-config": "collector.commands.check_config",
    "discover": "collector.commands.discover",
    "simulate": "collector.commands.simulate",
    "import": "collector.commands.importer",
    "dead-letters": "collector.commands.dead_letters",
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `bess-collector`."""
    return cli.run("bess-collector", __doc__.splitlines()[0], COMMANDS, argv)


if __name__ == "__main__":
    sys.exit(main())
