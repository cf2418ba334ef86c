"""Pure parts of the forecaster benchmark: synthetic site history, its line protocol, the fine-tune estimate."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

NS = 1_000_000_000
DAY_S = 86_400

# Field of the `system` measurement behind each forecaster series key (forecaster/series.py).
SYSTEM_FIELDS = {
    "battery_power_w": "battery_power_w",
    "battery_voltage_v": "battery_voltage_v",
    "battery_soc_pct": "battery_soc_pct",
    "pv_power_w": "pv_w",
    "load_power_w": "load_w",
}


def synthetic_series(start_ns: int, n: int, step_s: int, seed: int = 0) -> dict[str, np.ndarray]:
    """A BESS-like day cycle (quiet night, PV charging at midday, evening discharge) for every series key,
    n steps of step_s from start_ns. Values only need to look plausible: cost does not depend on them."""
    rng = np.random.default_rng(seed)
    ts = start_ns + np.arange(n, dtype=np.int64) * step_s * NS
    hour = (ts // NS % DAY_S) / 3600.0
    pv = np.clip(np.sin((hour - 6) / 12 * np.pi), 0, None) * 4000 + rng.normal(0, 40, n).clip(0)
    load = 300 + 700 * ((hour >= 18) & (hour < 22)) + rng.normal(0, 30, n)
    power = np.where((hour >= 10) & (hour < 15), 2500.0, 0.0)
    power = np.where((hour >= 18) & (hour < 22), -1500.0, power) + rng.normal(0, 20, n)
    soc = np.clip(50 + np.cumsum(power) * step_s / 3600 / 100, 5, 100)
    return {
        "battery_power_w": power,
        "battery_voltage_v": 48 + soc / 25,
        "battery_soc_pct": soc,
        "pv_power_w": pv,
        "load_power_w": load,
    }


def system_lines(series: dict[str, np.ndarray], start_ns: int, step_s: int, site: str) -> list[str]:
    """The series as `system` line protocol rows (the collector's field names), one row per step."""
    keys = list(SYSTEM_FIELDS)
    n = len(series[keys[0]])
    ts = start_ns + np.arange(n, dtype=np.int64) * step_s * NS
    cols = [series[k] for k in keys]
    names = [SYSTEM_FIELDS[k] for k in keys]
    out = []
    for i in range(n):
        fields = ",".join(f"{name}={col[i]:.3f}" for name, col in zip(names, cols, strict=True))
        out.append(f"system,site={site} {fields} {int(ts[i])}")
    return out


@dataclass(frozen=True)
class FinetuneEstimate:
    """The default scheduled fine-tune's wall time, from measured parts (seconds)."""

    read_s: float
    train_s: float
    eval_s: float
    gate_s: float

    @property
    def total_s(self) -> float:
        """Everything together."""
        return self.read_s + self.train_s + self.eval_s + self.gate_s


def estimate_finetune(
    *,
    read_s: float,
    first_step_s: float,
    step_s: float,
    num_steps: int,
    eval_steps: int,
    validation_windows: int,
    predict_ctx_train_s: float,
    gate_windows: int,
    predict_ctx_task_s: float,
) -> FinetuneEstimate:
    """read + first step + (num_steps - 1) steps + evaluations (every eval_steps and at the end, each one
    forward per validation window at the training context) + the gate back-test (candidate and incumbent,
    one forward each per cut-off at the task's context)."""
    evals = num_steps // eval_steps + (0 if num_steps % eval_steps == 0 else 1)
    return FinetuneEstimate(
        read_s,
        first_step_s + max(0, num_steps - 1) * step_s,
        evals * validation_windows * predict_ctx_train_s,
        2 * gate_windows * predict_ctx_task_s,
    )
