"""The forecaster's section of the config file ([forecaster]) and its root model. Pure pydantic."""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator

from bess_common.config import ForeignSection, Section, SharedSettings, load_file
from forecaster.cron import cron_problem
from forecaster.drivers import DRIVER_FEATURES
from forecaster.durations import duration_s

SERIES_KEYS = ("battery_power_w", "battery_voltage_v", "battery_soc_pct", "pv_power_w", "load_power_w")
TIME_FEATURES = ("tod_sin", "tod_cos", "dow_sin", "dow_cos")
KNOWN_FEATURES = (*TIME_FEATURES, *DRIVER_FEATURES)


class ForecastTask(Section):
    """One forecast task: what to predict, at what resolution, how far ahead, how often."""

    name: str = Field(pattern=r"^[a-z0-9_]+$", description="Task name, the `task` tag")
    target: str = Field("battery_power_w", description="Series key of the target (see docs/forecaster.md)")
    resolution: str = Field("1m", description="InfluxDB GROUP BY time() step, e.g. 1m, 15m")
    context_steps: int = Field(2048, ge=16, le=8192, description="Context length in steps of `resolution`")
    horizon_steps: int = Field(60, ge=1, le=1024, description="Steps ahead to forecast")
    cadence: str = Field("5m", description="How often a forecast is issued")
    past_covariates: list[str] = Field(
        default_factory=lambda: ["battery_voltage_v", "battery_soc_pct", "pv_power_w", "load_power_w"],
        description="Measured series given as history only",
    )
    known_covariates: list[str] = Field(
        default_factory=lambda: list(TIME_FEATURES),
        description=(
            f"Known-future covariates: time features ({', '.join(TIME_FEATURES)}) and the GX's plan and PV "
            f"forecast as issued before each cut-off ({', '.join(DRIVER_FEATURES)}; see docs/forecaster.md)"
        ),
    )
    min_context_fraction: float = Field(0.5, gt=0, le=1, description="Skip a window with less target data")
    max_last_gap_steps: int = Field(5, ge=0, description="Skip when the target's last value is older")

    @field_validator("resolution", "cadence")
    @classmethod
    def _check_duration(cls, value: str) -> str:
        duration_s(value)
        return value

    @field_validator("target")
    @classmethod
    def _check_target(cls, value: str) -> str:
        if value not in SERIES_KEYS:
            raise ValueError(f"unknown series {value!r}; one of {', '.join(SERIES_KEYS)}")
        return value

    @field_validator("past_covariates")
    @classmethod
    def _check_past(cls, value: list[str]) -> list[str]:
        bad = [v for v in value if v not in SERIES_KEYS]
        if bad:
            raise ValueError(f"unknown series {bad}; one of {', '.join(SERIES_KEYS)}")
        return value

    @field_validator("known_covariates")
    @classmethod
    def _check_known(cls, value: list[str]) -> list[str]:
        # Only timestamps and what was issued before the cut-off may be known-future: measured values would leak.
        bad = [v for v in value if v not in KNOWN_FEATURES]
        if bad:
            raise ValueError(
                f"{bad} cannot be known-future covariates (measured values would leak the future); "
                f"allowed: {', '.join(KNOWN_FEATURES)}"
            )
        if len(set(value)) != len(value):
            raise ValueError(f"known_covariates lists a name twice: {value}")
        return value

    @property
    def resolution_s(self) -> int:
        """Grid step in seconds."""
        return duration_s(self.resolution)

    @property
    def cadence_s(self) -> int:
        """Issue period in seconds."""
        return duration_s(self.cadence)


def _default_tasks() -> list[ForecastTask]:
    return [
        ForecastTask(name="intraday", resolution="1m", context_steps=2048, horizon_steps=60, cadence="5m"),
        ForecastTask(name="day_ahead", resolution="15m", context_steps=1024, horizon_steps=96, cadence="1h"),
    ]


class FinetuneSettings(Section):
    """Scheduled / on-demand re-fine-tuning and its promotion gate."""

    task: str = Field("intraday", description="Which task's resolution, context and horizon to train on")
    mode: Literal["lora", "full"] = Field("lora", description="LoRA adapter (small) or full weights")
    cron: str = Field("0 3 * * sun", description="crontab line (UTC; 5 fields, or 6 with seconds first); empty = off")
    train_days: float = Field(28.0, gt=0, description="Days of history before the held-out part")
    validation_days: float = Field(2.0, gt=0, description="Held out for checkpoint selection")
    gate_days: float = Field(2.0, gt=0, description="Most recent days, held out for the promotion backtest")
    gate_windows: int = Field(24, ge=1, description="Rolling backtest cut-offs over the gate period")
    gate_margin: float = Field(
        0.05,
        ge=0,
        description="Allowed relative MAE worsening in any one regime (beyond a floor in W: docs/forecaster.md)",
    )
    gate_min_regime_windows: int = Field(
        5, ge=1, description="A regime with fewer gate windows cannot block a promotion (it counts overall)"
    )
    context_steps: int = Field(512, ge=16, le=8192, description="Context length used for training")
    num_steps: int = Field(200, ge=1, description="Optimizer steps")
    learning_rate: float = Field(1e-5, gt=0, description="~1e-5 for LoRA, ~1e-6 for full")
    batch_size_rows: int = Field(32, ge=1, description="Rows (target + covariates) per batch, not windows")
    eval_steps: int = Field(50, ge=1, description="Evaluate / checkpoint every N steps")
    keep_versions: int = Field(5, ge=1, description="Keep the last K versions in the registry")

    @field_validator("cron")
    @classmethod
    def _check_cron(cls, value: str) -> str:
        problem = cron_problem(value)
        if problem:
            raise ValueError(problem)
        return value


class DriverSettings(Section):
    """The GX's plan and a PV forecast as known-future covariates of the tasks that list them (docs/forecaster.md)."""

    time_zone: str = Field(
        "UTC",
        description="The GX's time zone (IANA name) for ESS charge windows, used when a plan snapshot "
        "does not record the GX's own",
    )
    pv_provider: str = Field(
        "", description="The `provider` tag of the PV forecast to use; empty = the newest issue of any provider"
    )

    @field_validator("time_zone")
    @classmethod
    def _check_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}; an IANA name such as 'Europe/Amsterdam' or 'UTC'") from None
        return value


class ForecasterSettings(Section):
    """The forecaster service."""

    base_model: str = Field("amazon/chronos-2", description="Hub id or local directory of Chronos-2")
    registry_dir: Path = Field(Path("/var/lib/bess-edge/models"), description="Fine-tuned versions")
    tasks: list[ForecastTask] = Field(default_factory=_default_tasks)
    quiet_threshold_w: float | None = Field(
        None, gt=0, description="Absolute override: mean |battery power| below this = quiet (unset: derived)"
    )
    quiet_fraction: float = Field(
        0.05,
        gt=0,
        lt=1,
        description="Derived quiet threshold: this x the 99th percentile of |target| (training data / scored period)",
    )
    wql_floor_w: float = Field(100.0, gt=0, description="Per-step floor of the WQL denominator (W)")
    score_interval: str = Field("1h", description="Scoring job period")
    score_period: str = Field("24h", description="Score forecasts whose horizon ended in this window")
    num_threads: int = Field(2, ge=1, description="torch.set_num_threads")
    misfire_grace_s: int = Field(120, ge=1, description="Run a late job if at most this late")
    backfill_max_cutoffs: int = Field(
        12, ge=1, description="Cut-offs per task caught up after an outage (the newest; older ones stay missed)"
    )
    influx_wait_s: float = Field(
        600.0, ge=0, description="How long predict, score and finetune wait for InfluxDB at start (serve: for ever)"
    )
    finetune: FinetuneSettings = Field(default_factory=FinetuneSettings)
    drivers: DriverSettings = Field(default_factory=DriverSettings)

    @field_validator("score_interval", "score_period")
    @classmethod
    def _check_duration(cls, value: str) -> str:
        duration_s(value)
        return value

    @model_validator(mode="after")
    def _check_tasks(self) -> ForecasterSettings:
        names = [t.name for t in self.tasks]
        if len(set(names)) != len(names):
            raise ValueError(f"task names must be unique, got {names}")
        if self.finetune.task not in names:
            raise ValueError(f"finetune.task {self.finetune.task!r} is not one of the tasks {names}")
        return self


class Settings(SharedSettings):
    """The config file as the forecaster reads it."""

    gx: ForeignSection = Field(default_factory=dict, description="Validated by the collector")
    collector: ForeignSection = Field(default_factory=dict, description="Validated by the collector")
    forecaster: ForecasterSettings = Field(default_factory=ForecasterSettings)


def load_settings(path: Path | None) -> Settings:
    """Load and validate the config file for the forecaster (ConfigError lists every problem)."""
    return load_file(path, Settings)
