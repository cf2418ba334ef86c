"""`bess-forecaster check-config --config FILE`: validate the forecaster's view of the config file.

Prints "OK: <summary>" and exits 0, or every problem on its own line (stderr) and exits 2. Checks the shared
sections and `[forecaster]`; `bess-collector check-config` checks the collector's sections. Loads no model.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bess_common.config import env_warnings
from bess_common.errors import ConfigError
from forecaster.config import Settings, load_settings

HELP = "Validate the config file's shared and [forecaster] sections: print OK and exit 0, or every problem and exit 2"


def configure(parser: argparse.ArgumentParser) -> None:
    """Arguments of check-config."""
    parser.add_argument("--config", type=Path, required=True, help="the TOML config file")


def summary(settings: Settings) -> str:
    """One line describing what the config asks of the forecaster."""
    f = settings.forecaster
    tasks = ",".join(f"{t.name}({t.resolution}x{t.horizon_steps})" for t in f.tasks)
    cron = f.finetune.cron or "off"
    return (
        f"site={settings.site} influx={settings.influx.url} db={settings.influx.database} tasks={tasks} "
        f"model={f.base_model} registry={f.registry_dir} finetune={f.finetune.mode} cron='{cron}'"
    )


def main(args: argparse.Namespace) -> int:
    """Exit 0 with OK, or 2 with every problem."""
    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        for line in exc.problems:
            print(line, file=sys.stderr)
        return 2
    for line in env_warnings(Settings):
        print(f"warning: {line}", file=sys.stderr)
    print(f"OK: {summary(settings)}")
    return 0
