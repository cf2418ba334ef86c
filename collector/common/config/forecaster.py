"""The [forecaster] section of the shared config file. Pure pydantic; the forecaster owns its meaning."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from collector.common.config.sections import Section


class ForecastTask(Section):
    """One forecast task: what to predict, at what resolution, how far ahead, how often."""

    name: str
    target: str = Field("battery_power_w", description="Series key of the target (see docs/schema.md)")
    resolution: str = Field("1m", description="InfluxDB GROUP BY time() step, e.g. 1m, 15m")
    context_steps: int = Field(2048, ge=16, le=8192)
    horizon_steps: int = Field(60, ge=1, le=1024)
    cadence: str = Field("5m", description="How often a forecast is issued")
    past_covariates: list[str] = Field(
        default_factory=lambda: ["battery_voltage_v", "battery_soc_pct", "pv_power_w", "load_power_w"]
    )
    known_covariates: list[str] = Field(default_factory=lambda: ["tod_sin", "tod_cos", "dow_sin", "dow_cos"])


def _default_tasks() -> list[ForecastTask]:
    return [
        ForecastTask(name="intraday", resolution="1m", context_steps=2048, horizon_steps=60, cadence="5m"),
        ForecastTask(name="day_ahead", resolution="15m", context_steps=1024, horizon_steps=96, cadence="1h"),
    ]


class ForecasterSettings(Section):
    """The forecaster service."""

    base_model: str = Field("amazon/chronos-2", description="Hub id or local directory of Chronos-2")
    registry_dir: Path = Field(Path("/var/lib/bess-edge/models"), description="Fine-tuned versions")
    tasks: list[ForecastTask] = Field(default_factory=_default_tasks)
