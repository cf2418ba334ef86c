"""Display names and number formats shared by tables, plots and the narrative (one place for the stand-in label)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from forecaster import zoo
from forecaster.report.stats import Estimate
from forecaster.run_contract import ALL_COVARIATES, NO_VARIANT, PAST_COVARIATES, PLAN_FORECAST, TARGET_ONLY

STAND_IN_TAG = "[STAND-IN]"
VARIANT_NAMES = {
    TARGET_ONLY: "target only",
    PAST_COVARIATES: "+ past covariates",
    ALL_COVARIATES: "+ all covariates",
    PLAN_FORECAST: "+ plan and forecast",
    NO_VARIANT: "-",
}
MINUS = "\u2212"


def _registered(model: str) -> type[zoo.ForecastModel] | None:
    return next((cls for cls in zoo.MODELS if cls.name == model), None)


def model_order() -> tuple[str, ...]:
    """Model names in registry order (the report lists models in this order, unknown ones after)."""
    return tuple(zoo.names())


def uses_base_weights(model: str) -> bool:
    """True for a registered model that runs on the base weights (it carries the stand-in tag when those were
    a stand-in)."""
    return bool(getattr(_registered(model), "uses_base_weights", False))


def model_label(model: str, stand_in: bool) -> str:
    """Display name of a model (the registry's label); models on the base weights carry the stand-in tag
    when those were a stand-in."""
    cls = _registered(model)
    name = cls.label if cls is not None else model
    return f"{name} {STAND_IN_TAG}" if stand_in and uses_base_weights(model) else name


def variant_label(variant: str) -> str:
    """Display name of a covariate variant."""
    return VARIANT_NAMES.get(variant, variant)


def series_label(model: str, variant: str, stand_in: bool) -> str:
    """Model plus variant, e.g. 'fine-tuned, + all covariates'."""
    if variant in (NO_VARIANT, ""):
        return model_label(model, stand_in)
    return f"{model_label(model, stand_in)}, {variant_label(variant)}"


def _signed(text: str) -> str:
    return text.replace("-", MINUS) if text.startswith("-") else text


def fmt_num(value: float) -> str:
    """A number with precision suited to its size ('1,234', '45.6', '3.21')."""
    if not math.isfinite(value):
        return "n/a"
    size = abs(value)
    text = f"{value:,.0f}" if size >= 100 else f"{value:.1f}" if size >= 10 else f"{value:.2f}"
    return _signed(text)


def fmt_w(value: float, unit: str = "W") -> str:
    """A power value with its unit."""
    return f"{fmt_num(value)} {unit}" if math.isfinite(value) else "n/a"


@dataclass(frozen=True)
class PowerScale:
    """The unit power values are shown in (W, kW or MW), chosen from the data's size."""

    unit: str = "W"
    factor: float = 1.0

    def of(self, value_w: float) -> float:
        """A value in W in this unit."""
        return value_w / self.factor


SCALES = (PowerScale("MW", 1e6), PowerScale("kW", 1e3))


def power_scale(values_w: np.ndarray, base_unit: str = "W") -> PowerScale:
    """MW from 1 MW, kW from 1 kW (99th percentile of |value|), else W; other units are left as they are."""
    if base_unit != "W":
        return PowerScale(base_unit, 1.0)
    finite = np.abs(np.asarray(values_w, dtype=float))
    finite = finite[np.isfinite(finite)]
    size = float(np.percentile(finite, 99)) if finite.size else 0.0
    return next((s for s in SCALES if size >= s.factor), PowerScale())


def fmt_power(value_w: float, scale: PowerScale) -> str:
    """A power value (given in W) in the scale's unit: '1.25 MW', '830 W'; a value under 1 unit drops to the
    next smaller unit ('8.0 W', not '0.01 kW')."""
    if not math.isfinite(value_w):
        return "n/a"
    smaller = [s for s in (*SCALES, PowerScale()) if s.factor < scale.factor]
    if scale.unit in ("W", "kW", "MW") and abs(value_w) < scale.factor and smaller:
        scale = next((s for s in smaller if abs(value_w) >= s.factor), smaller[-1])
    return f"{fmt_num(scale.of(value_w))} {scale.unit}"


def fmt_pct(ratio: float, signed: bool = True) -> str:
    """A ratio as percent ('−12 %'); signed adds '+' to positive values."""
    if not math.isfinite(ratio):
        return "n/a"
    pct = ratio * 100
    digits = ".0f" if abs(pct) >= 0.5 or pct == 0 else ".1g"  # never print a nonzero value as '-0 %'
    text = format(pct, ("+" if signed else "") + digits) + " %"
    return _signed(text)


def fmt_ratio(value: float) -> str:
    """A dimensionless ratio such as WQL or skill ('0.123')."""
    return _signed(f"{value:.3f}") if math.isfinite(value) else "n/a"


def fmt_ci(est: Estimate, fmt: str = "num") -> str:
    """'value (low to high)' in the format of fmt: num, pct (coverage as percent) or ratio."""
    show = {"num": fmt_num, "pct": lambda v: fmt_pct(v, signed=False), "ratio": fmt_ratio}[fmt]
    if not est.has_ci:
        return show(est.value)
    return f"{show(est.value)} ({show(est.low)} to {show(est.high)})"
