"""The Grafana dashboard (deploy/grafana/) against a real influxd filled with simulated data.

Grafana itself is not needed: every InfluxQL target of the dashboard is taken from the JSON, its macros and
template variables are substituted the way Grafana does it, and it runs against InfluxDB holding 30 minutes
of the simulator's 1 Hz history, collector_health rows from `collector.health`, and forecasts and scores
written by the forecaster's own functions (`forecast_samples`, `score`, `score_samples`, `ForecastStore`).
Each query must return rows, and every column it selects must hold a value somewhere.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from bess_common.influx import InfluxClient
from bess_common.lineproto import to_lines
from collector.health import Health, HealthSnapshot
from collector.simulator.history import history_samples
from collector.simulator.physics import BessPhysics
from forecaster.frame import Forecast, forecast_samples, mean_from_quantiles, to_frame
from forecaster.scoring import score, score_samples
from forecaster.store import ForecastStore
from tests.conftest import FC_QUANTILES, REPO_ROOT

GRAFANA = REPO_ROOT / "deploy" / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "bess-edge.json"
DATASOURCES = GRAFANA / "datasources" / "bess-edge.yaml"
PROVIDERS = GRAFANA / "dashboards" / "bess-edge.yaml"

SITE = "shop"
NS = 1_000_000_000
START_NS = int(datetime(2026, 1, 5, 11, 0, tzinfo=UTC).timestamp()) * NS  # a cycling hour of the simulator
TELEMETRY_S = 30 * 60
STEP_S = 60
HORIZON = 10
CUTOFFS_NS = (START_NS + 15 * 60 * NS, START_NS + 20 * 60 * NS)
TASK = "intraday"
MODEL_NOISE_W = {"base": 150.0, "finetuned": 80.0, "persistence": 0.0, "seasonal_naive": 300.0}
WRITE_BATCH = 5000
VAR_RE = re.compile(r"\$\{(\w+)\}|\$(\w+)")


def _load_dashboard() -> dict[str, Any]:
    return dict(json.loads(DASHBOARD.read_text()))


def _provisioned_uid() -> str:
    doc = yaml.safe_load(DATASOURCES.read_text())
    (source,) = doc["datasources"]
    return str(source["uid"])


def _panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


def _targets(dashboard: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(f"{p['title']} [{t['refId']}]", t) for p in _panels(dashboard) for t in p.get("targets", [])]


# --- filling InfluxDB -------------------------------------------------------------------------------------


def _write(influx: InfluxClient, lines: list[str]) -> None:
    for i in range(0, len(lines), WRITE_BATCH):
        influx.write(lines[i : i + WRITE_BATCH])


def _fill_telemetry(influx: InfluxClient) -> None:
    samples = history_samples(BessPhysics(seed=7), START_NS, START_NS + TELEMETRY_S * NS, 1, site=SITE)
    _write(influx, to_lines(list(samples)))


def _health_probe(step: list[int]) -> Callable[[], HealthSnapshot]:
    """Counters that grow over the run, with one buffer-full episode and one rejected line."""

    def probe() -> HealthSnapshot:
        n = step[0]
        return HealthSnapshot(
            polled={"mqtt": 900 * n, "modbus": 120 * n},
            buffered=20 * n,
            written=20 * n - (40 if 60 <= n < 90 else 0),
            rejected=1 if n > 100 else 0,
            dropped=max(0, n - 80) * 5,
            buffer_depth=40 if 60 <= n < 90 else 2,
            buffer_oldest_age_s=600.0 if 60 <= n < 90 else 0.5,
            buffer_bytes=4096 * (1 + n),
            last_write_wall_ns=START_NS + n * 10 * NS - NS,
            influx_up=not 60 <= n < 90,
            source_state={"mqtt": {"system": "connected", "bms": "connected"}, "modbus": {"shunt": "connected"}},
            source_counters={"mqtt": {"garbage_non_json": n // 50}, "modbus": {"errors_connection": n // 70}},
            ticks=10 * n,
            ticks_missed=1 if n > 30 else 0,
        )

    return probe


def _fill_health(influx: InfluxClient) -> None:
    step = [0]
    health = Health(SITE, _health_probe(step), host="edge-1")
    samples = []
    for n in range(TELEMETRY_S // 10):
        step[0] = n
        samples.append(health.sample(START_NS + n * 10 * NS))
    _write(influx, to_lines(samples))


def _forecast(model: str, cutoff_ns: int, last_w: float, rng: np.random.Generator, fallback: str = "") -> Forecast:
    """A plausible forecast: persistence plus model-specific noise, quantiles spread around the median."""
    steps = np.arange(HORIZON)
    median = last_w + rng.normal(0.0, MODEL_NOISE_W[model] + 1.0, HORIZON)
    spread = 50.0 + 20.0 * steps
    levels = tuple(FC_QUANTILES)
    quantiles = np.array([median + (level - 0.5) * 2.6 * spread for level in levels])
    version = {"base": "base:amazon/chronos-2", "finetuned": "ft-20260104T030000Z"}.get(model, "baseline")
    return Forecast(
        task=TASK,
        target="battery_power_w",
        model=model,
        model_version=version,
        cutoff_ns=cutoff_ns,
        ts_ns=cutoff_ns + steps.astype(np.int64) * STEP_S * NS,
        lead_s=(steps + 1) * STEP_S,
        levels=levels,
        quantiles=quantiles,
        mean=mean_from_quantiles(levels, quantiles),
        fallback=fallback,
    )


def _fill_forecasts_and_scores(influx: InfluxClient) -> None:
    store = ForecastStore(influx, SITE)
    n = TELEMETRY_S // STEP_S
    grid = store.read_grid(["battery_power_w"], START_NS, STEP_S, n)["battery_power_w"]
    actual = pd.Series(grid, index=START_NS + STEP_S * NS * np.arange(n, dtype=np.int64))
    assert np.isfinite(grid).sum() > n // 2, "the simulated telemetry should give minute means of battery power"
    rng = np.random.default_rng(0)
    forecasts = []
    for cutoff in CUTOFFS_NS:
        last_w = float(actual[cutoff - STEP_S * NS])
        for model in MODEL_NOISE_W:
            fallback = "persistence" if model == "finetuned" and cutoff == CUTOFFS_NS[-1] else ""
            forecasts.append(_forecast(model, cutoff, last_w, rng, fallback))
    store.write_samples([s for f in forecasts for s in forecast_samples(f, SITE, "live")])
    for k, end_ns in enumerate((CUTOFFS_NS[0] + HORIZON * STEP_S * NS, START_NS + TELEMETRY_S * NS)):
        frame = to_frame(forecasts[: 4 * (k + 1)], run="live")
        rows = score(frame, actual, threshold_w=100.0, floor_w=100.0, step_s=STEP_S)
        assert rows, "scoring the synthetic forecasts should give score rows"
        store.write_samples(score_samples(rows, SITE, TASK, period="24h", run="live", ts_ns=end_ns))


# --- Grafana's substitutions --------------------------------------------------------------------------------


def _time_filter() -> str:
    """Grafana's $timeFilter for the data's range (absolute, in ms, as Grafana renders it)."""
    start_ms = START_NS // 1_000_000
    end_ms = (START_NS + (TELEMETRY_S + 600) * NS) // 1_000_000
    return f"time >= {start_ms}ms and time <= {end_ms}ms"


def _substitute(text: str, values: dict[str, str]) -> str:
    def one(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name not in values:
            raise AssertionError(f"unknown variable ${name} in: {text}")
        return values[name]

    return VAR_RE.sub(one, text)


def _rows(influx: InfluxClient, query: str) -> list[dict[str, Any]]:
    return [row for series in influx.query(query) for row in series.rows()]


def _resolve_variables(influx: InfluxClient, dashboard: dict[str, Any]) -> dict[str, str]:
    """Run each template variable's query in order and pick its value the way Grafana does."""
    values = {"timeFilter": _time_filter(), "__interval": "1m"}
    for var in dashboard["templating"]["list"]:
        options = [str(r["value"]) for r in _rows(influx, _substitute(var["query"], values))]
        assert options, f"template variable {var['name']} has no values: {var['query']}"
        current = var.get("current", {}).get("value")
        if var.get("multi") or var.get("includeAll"):
            chosen = options if current in (None, "$__all", ["$__all"]) else list(current)
            values[var["name"]] = "(" + "|".join(re.escape(v) for v in chosen) + ")"
        else:
            values[var["name"]] = current if current in options else options[0]
    return values


def _problem(influx: InfluxClient, query: str) -> str | None:
    """Why this query's answer would leave a panel empty, or None."""
    try:
        rows = _rows(influx, query)
    except Exception as exc:  # the error text is the useful part of the failure report
        return f"error: {exc}"
    if not rows:
        return "no rows"
    columns = {c for row in rows for c in row} - {"time"}
    empty = sorted(c for c in columns if all(row.get(c) is None for row in rows))
    return f"columns without any value: {empty}" if empty else None


# --- tests ----------------------------------------------------------------------------------------------------


def test_when_dashboard_is_loaded_then_it_is_valid_provisioned_grafana_json() -> None:
    dashboard = _load_dashboard()
    uid = _provisioned_uid()
    providers = yaml.safe_load(PROVIDERS.read_text())["providers"]
    assert providers and providers[0]["type"] == "file"
    assert dashboard["uid"] and dashboard["schemaVersion"] >= 36
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert {"site", "task", "model"} <= set(variables)
    assert variables["site"]["query"] == 'SHOW TAG VALUES FROM "system" WITH KEY = "site"'
    panels = list(_panels(dashboard))
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    cells: set[tuple[int, int]] = set()
    for panel in panels:
        pos = panel["gridPos"]
        assert pos["x"] >= 0 and pos["x"] + pos["w"] <= 24, panel["title"]
        taken = {(x, y) for x in range(pos["x"], pos["x"] + pos["w"]) for y in range(pos["y"], pos["y"] + pos["h"])}
        assert not taken & cells, f"panel overlaps another: {panel['title']}"
        cells |= taken
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == uid, panel["title"]
            assert panel["targets"], f"panel without a query: {panel['title']}"
    for name, target in _targets(dashboard):
        assert target["rawQuery"] is True and target["query"].strip(), name
        assert target["datasource"]["uid"] == uid, name


@pytest.mark.integration
def test_when_influx_holds_simulated_data_then_every_dashboard_query_returns_rows(influx: InfluxClient) -> None:
    _fill_telemetry(influx)
    _fill_health(influx)
    _fill_forecasts_and_scores(influx)
    dashboard = _load_dashboard()
    values = _resolve_variables(influx, dashboard)
    targets = _targets(dashboard)
    problems = []
    for name, target in targets:
        query = _substitute(target["query"], values)
        problem = _problem(influx, query)
        if problem:
            problems.append(f"{name}: {problem}\n    {query}")
    assert not problems, "dashboard queries that would show nothing:\n" + "\n".join(problems)
    measurements = {m for _, t in targets for m in re.findall(r'FROM "(\w+)"', t["query"])}
    assert measurements >= {"battery", "cell", "system", "forecast", "forecast_score", "collector_health"}


@pytest.mark.integration
def test_when_a_query_names_a_missing_field_then_the_check_reports_it(influx: InfluxClient) -> None:
    influx.write([f"battery,site={SITE},device=shunt voltage_v=52.1 {START_NS}"])
    good = f'SELECT mean("voltage_v") FROM "battery" WHERE {_time_filter()} GROUP BY time(1m)'
    typo = f'SELECT mean("voltage_v") AS "v", mean("voltag_v") AS "typo" FROM "battery" WHERE {_time_filter()}'
    assert _problem(influx, good) is None
    assert _problem(influx, typo) == "columns without any value: ['typo']"
    assert _problem(influx, good.replace('"battery"', '"batery"')) == "no rows"
