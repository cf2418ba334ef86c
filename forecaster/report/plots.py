"""PNG plots of the report (matplotlib, object API on the Agg canvas: no pyplot global state)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import matplotlib.dates as mdates
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from forecaster.report import tables as tb
from forecaster.report.labels import (
    STAND_IN_TAG,
    fmt_power,
    model_label,
    power_scale,
    series_label,
    variant_label,
)
from forecaster.report.runfolder import RunData
from forecaster.run_contract import NO_VARIANT, VARIANTS

COLORS = {"base": "#1f77b4", "finetuned": "#d62728", "persistence": "#7f7f7f", "seasonal_naive": "#2ca02c"}
OTHER_COLORS = ("#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#ff7f0e")
REGIME_COLORS = {"quiet": "#9ecae1", "cycling": "#fd8d3c", "transition": "#a1d99b"}
VARIANT_COLORS = {
    "target_only": "#bdbdbd",
    "past_covariates": "#6baed6",
    "all_covariates": "#08519c",
    "plan_forecast": "#e6550d",
}
DPI = 100
LINESTYLES = ("-", "--", "-.", ":", (0, (5, 1, 1, 1)), (0, (3, 1, 1, 1, 1, 1)))
LINE_MARKERS = ("o", "s", "D", "^", "v", "P")


def power_axis_label(run: RunData, what: str) -> str:
    """'battery_power_w (kW, + = charging)': the unit in use and, for battery power, the sign convention."""
    sign = ", + = charging" if "battery_power" in str(run.manifest.get("target", "")) or what == "battery" else ""
    name = run.manifest.get("target", "target") if what == "battery" else what
    return f"{name} ({run.scale.unit}{sign})"


def lead_axis(max_minutes: float) -> tuple[str, float]:
    """The unit of a lead-time axis ('s' up to 3 min, 'min' up to 3 h, else 'h') and the divisor from minutes."""
    if max_minutes <= 3:
        return "s", 1 / 60
    return ("h", 60.0) if max_minutes > 180 else ("min", 1.0)


@dataclass(frozen=True)
class Plot:
    """A written PNG with the text the report shows under it."""

    path: Path
    title: str
    caption: str


def save(fig: Figure, path: Path, stand_in: bool) -> Path:
    if stand_in:
        fig.supxlabel(
            f"Base model: {STAND_IN_TAG} - these results are not Chronos-2",
            color="#b00000",
            fontsize=11,
            fontweight="bold",
        )
    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=DPI)
    return path


def color_of(model: str, tables: tb.Tables) -> str:
    """A model's line colour: fixed for the usual models, then distinct colours in model order."""
    if model in COLORS:
        return COLORS[model]
    others = [m for m in tables.models if m not in COLORS]
    return OTHER_COLORS[others.index(model) % len(OTHER_COLORS)] if model in others else "#444444"


def models_to_draw(tables: tb.Tables) -> list[tuple[str, str]]:
    """Every model in order, in the main variant when it has one, else with no variant."""
    present = {(r.model, r.variant) for r in tables.rows}
    pairs = [(m, tables.main_variant if (m, tables.main_variant) in present else NO_VARIANT) for m in tables.models]
    return [(m, v) for m, v in pairs if (m, v) in present]


def error_vs_lead(
    run: RunData, tables: tb.Tables, points: pd.DataFrame, out: Path, *, seed: int, resamples: int
) -> Plot:
    """MAE vs lead time, one panel per regime, one line per model with its 95 % CI band."""
    regimes = tables.regimes
    cols = 2 if len(regimes) > 2 else len(regimes)
    rows = math.ceil(len(regimes) / cols)
    fig = Figure(figsize=(6.0 * cols, 3.8 * rows + 0.6), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax in axes[len(regimes) :]:
        ax.set_visible(False)
    max_lead = float(points["lead_minutes"].max()) if not points.empty else 60.0
    lead_unit, per = lead_axis(max_lead)
    for ax, regime in zip(axes, regimes, strict=False):
        drawn: dict[str, np.ndarray] = {}
        mine = points if regime == tb.ALL_REGIMES else points[points["regime"] == regime]
        scale = power_scale(mine["actual"].to_numpy(dtype=float), run.unit)  # quiet panels in W, cycling in kW
        for k, (model, variant) in enumerate(models_to_draw(tables)):
            curve = tb.lead_curve(points, regime, model, variant, seed=seed, resamples=resamples)
            if not curve.lead_minutes:
                continue
            x = np.array(curve.lead_minutes) / per
            y = np.array([scale.of(e.value) for e in curve.mae])
            label = series_label(model, variant, run.stand_in)
            same = next(
                (name for name, other in drawn.items() if other.shape == y.shape and np.allclose(other, y)), None
            )
            if same is not None:
                label += f" (identical to {same})"
            drawn[label] = y
            color = color_of(model, tables)
            ax.plot(x, y, color=color, label=label, lw=1.6, ls=LINESTYLES[k % len(LINESTYLES)],
                    marker=LINE_MARKERS[k % len(LINE_MARKERS)], markevery=max(1, len(x) // 8), ms=4)  # fmt: skip
            low, high = np.array([scale.of(e.low) for e in curve.mae]), np.array([scale.of(e.high) for e in curve.mae])
            if np.isfinite(low).any():
                ax.fill_between(x, low, high, color=color, alpha=0.12, lw=0)
        ax.set_title("all windows" if regime == tb.ALL_REGIMES else f"{regime} windows")
        ax.set_xlabel(f"lead time ({lead_unit})")
        ax.set_ylabel(f"MAE ({scale.unit})")
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8, loc="upper left")
    fig.suptitle("Error vs lead time by regime (median forecast; band = 95 % CI over windows)")
    path = save(fig, out / "error_vs_lead.png", run.stand_in)
    return Plot(
        path,
        "Error vs lead time",
        "MAE of the median forecast at each lead time; shaded: 95 % bootstrap CI over windows.",
    )


def representative_cutoff(tables: tb.Tables, regime: str) -> pd.Timestamp | None:
    """The window with the median MAE of the reference model in a regime (deterministic; ties by time)."""
    model = "finetuned" if "finetuned" in tables.models else "base"
    cell = tables.cells.get((regime, model, tables.main_variant, tb.ALL_LEADS))
    if cell is None or cell.sums.shape[0] == 0:
        return None
    errors = cell.sums[:, 1] / np.maximum(cell.sums[:, 0], 1.0)
    order = np.lexsort((cell.cutoffs, errors))
    chosen = cell.cutoffs[order[(len(order) - 1) // 2]]
    return pd.Timestamp(int(chosen), unit="ns", tz="UTC")


def _band_panel(ax: Axes, window: pd.DataFrame, run: RunData, model: str, variant: str) -> None:
    rows = window[(window["model"] == model) & (window["variant"] == variant)].sort_values("timestamp")
    actual = window.drop_duplicates("timestamp").sort_values("timestamp")
    scale = run.scale
    ax.plot(actual["timestamp"], actual["actual"] / scale.factor, color="black", lw=1.5, label="actual")
    if rows.empty:
        ax.text(0.5, 0.5, "no forecast", transform=ax.transAxes, ha="center")
        return
    color = COLORS.get(model, "#444444")
    ax.plot(rows["timestamp"], rows["median"] / scale.factor, color=color, lw=1.5, ls="--", label="median forecast")
    low, high = tb.interval_columns(run)
    if low and high:
        ax.fill_between(
            rows["timestamp"],
            rows[low] / scale.factor,
            rows[high] / scale.factor,
            color=color,
            alpha=0.22,
            lw=0,
            label="80 % band (q0.1-q0.9)",
        )
    mae = float(np.nanmean(np.abs(rows["actual"] - rows["median"])))
    ax.set_title(f"{series_label(model, variant, run.stand_in)}\nMAE {fmt_power(mae, scale)}", fontsize=10)
    ax.set_ylabel(power_axis_label(run, "battery"))
    ax.set_xlabel("time (UTC)")
    ax.grid(alpha=0.3)
    locator = mdates.AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))


def window_plot(run: RunData, tables: tb.Tables, regime: str, out: Path) -> Plot | None:
    """Actuals against base and fine-tuned (median + 80 % band), side by side, for the median-error window."""
    cutoff = representative_cutoff(tables, regime)
    if cutoff is None:
        return None
    frame = run.forecasts
    window = frame[frame["cutoff"] == cutoff]
    models = [m for m in ("base", "finetuned") if m in tables.models]
    fig = Figure(figsize=(6.0 * len(models), 4.2), layout="constrained")
    axes = fig.subplots(1, len(models), squeeze=False, sharey=True)[0]
    for ax, model in zip(axes, models, strict=True):
        _band_panel(ax, window, run, model, tables.main_variant)
    axes[0].legend(fontsize=8, loc="best")
    fig.suptitle(f"Representative {regime} window (median error), cutoff {cutoff:%Y-%m-%d %H:%M} UTC")
    path = save(fig, out / f"window_{regime}.png", run.stand_in)
    caption = (
        f"The {regime} window whose error is the median of all {regime} windows; black: actual, line: median "
        "forecast, band: 80 % interval."
    )
    return Plot(path, f"Representative {regime} window", caption)


def covariate_ablation(run: RunData, tables: tb.Tables, out: Path) -> Plot | None:
    """MAE by regime for each covariate variant (bars with 95 % CI), one panel per model forecast with
    covariates (two panels a row)."""
    present = {(r.model, r.variant) for r in tables.rows}
    models = [m for m in tables.models if sum((m, v) in present for v in VARIANTS) >= 2]
    variants = [v for v in VARIANTS if v in tables.variants]
    if not models or len(variants) < 2:
        return None
    cols = min(2, len(models))
    n_rows = math.ceil(len(models) / cols)
    fig = Figure(figsize=(6.0 * cols, 4.0 * n_rows + 0.4), layout="constrained")
    axes = fig.subplots(n_rows, cols, squeeze=False).ravel()
    for ax in axes[len(models) :]:
        ax.set_visible(False)
    width = 0.8 / len(variants)
    for ax, model in zip(axes, models, strict=False):
        x = np.arange(len(tables.regimes))
        for i, variant in enumerate(variants):
            rows = [tables.row(regime, model, variant) for regime in tables.regimes]
            f = run.scale.factor
            values = np.array([r.mae.value / f if r else math.nan for r in rows])
            low = np.array([(r.mae.value - r.mae.low) / f if r and r.mae.has_ci else 0.0 for r in rows])
            high = np.array([(r.mae.high - r.mae.value) / f if r and r.mae.has_ci else 0.0 for r in rows])
            ax.bar(
                x + (i - (len(variants) - 1) / 2) * width,
                values,
                width,
                yerr=[low, high],
                capsize=3,
                color=VARIANT_COLORS.get(variant),
                label=variant_label(variant),
            )
        ax.set_xticks(x, tables.regimes)
        ax.set_ylabel(f"MAE ({run.scale.unit})")
        ax.set_title(model_label(model, run.stand_in))
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle("Covariate ablation: MAE by regime (error bars = 95 % CI over windows)")
    path = save(fig, out / "covariate_ablation.png", run.stand_in)
    return Plot(path, "Covariate ablation", "MAE at all lead times for each covariate variant, per regime.")


def _timeline(ax: Axes, run: RunData, points: pd.DataFrame) -> None:
    m = run.manifest
    spans = [
        ("before split (training)", m.get("start"), m.get("split"), "#dadaeb"),
        ("backtest", m.get("split"), m.get("end"), "#fdd0a2"),
    ]
    for label, start, end, color in spans:
        if start and end:
            ax.axvspan(pd.Timestamp(start), pd.Timestamp(end), color=color, alpha=0.6, label=f"{label} range")
    for i, gap in enumerate(m.get("data", {}).get("gaps", []) or []):
        ax.axvspan(
            pd.Timestamp(gap["start"]),
            pd.Timestamp(gap["end"]),
            color="#cb181d",
            alpha=0.8,
            label="gap (no data)" if i == 0 else None,
        )
    windows = points.drop_duplicates("cutoff")
    names = sorted(set(windows["regime"]), key=lambda r: list(REGIME_COLORS).index(r) if r in REGIME_COLORS else 9)
    rows = {name: 0.2 + 0.25 * i for i, name in enumerate(names)}
    for regime in names:
        group = windows[windows["regime"] == regime]
        ax.scatter(
            group["cutoff"],
            np.full(len(group), rows[regime]),
            marker="|",
            s=200,
            color=REGIME_COLORS.get(regime, "#636363"),
            label=f"{regime} window",
        )
    ax.set_yticks(list(rows.values()), [f"{name} windows" for name in rows], fontsize=8)
    ax.set_title("Data used: ranges, gaps and backtest windows")
    ax.set_xlabel("time (UTC)")
    ax.legend(fontsize=8, loc="upper left", ncols=3)
    ax.set_ylim(0, 0.2 + 0.25 * max(len(rows), 1) + 0.35)
    locator = mdates.AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))


def data_used(run: RunData, points: pd.DataFrame, out: Path) -> Plot:
    """Hours of data per regime (training and evaluation) and a timeline of ranges, gaps and windows."""
    fig = Figure(figsize=(12.0, 4.2), layout="constrained")
    left, right = fig.subplots(1, 2, width_ratios=[1, 2.4])
    data = run.manifest.get("data", {}) or {}
    hours = data.get("regime_hours") or {}
    regimes = [r for r in REGIME_COLORS if any(r in part for part in hours.values())]
    x = np.arange(len(regimes))
    for offset, (part, color) in zip((-0.2, 0.2), (("training", "#9e9ac8"), ("evaluation", "#fd8d3c")), strict=True):
        values = [float((hours.get(part) or {}).get(r, 0.0)) for r in regimes]
        left.bar(x + offset, values, 0.4, color=color, label=f"{part} (h)")
    if not regimes:
        left.text(0.5, 0.5, "no regime hours in the manifest", transform=left.transAxes, ha="center")
    left.set_xticks(x, regimes)
    left.set_ylabel("hours of data")
    left.set_title("Data per regime (hours)")
    left.legend(fontsize=8)
    left.grid(axis="y", alpha=0.3)
    _timeline(right, run, points)
    path = save(fig, out / "data_used.png", run.stand_in)
    return Plot(
        path,
        "Data used",
        "Left: hours of data in each regime before the split (training) and after it (evaluation). "
        "Right: training and backtest ranges, gaps, and each scored window.",
    )
