"""`bess-forecaster`: Chronos-2 forecasts, scores, fine-tunes, backtests and reports for the BESS."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from bess_common import cli

COMMANDS = {
    "serve": "forecaster.commands.serve",
    "check-config": "forecaster.commands.check_config",
    "predict": "forecaster.commands.predict",
    "score": "forecaster.commands.score",
    "finetune": "forecaster.commands.finetune",
    "models": "forecaster.commands.models",
    "promote": "forecaster.commands.promote",
    "rollback": "forecaster.commands.rollback",
    "backtest": "forecaster.commands.backtest",
    "report": "forecaster.commands.report",
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `bess-forecaster`."""
    return cli.run("bess-forecaster", __doc__.splitlines()[0], COMMANDS, argv)


if __name__ == "__main__":
    sys.exit(main())
