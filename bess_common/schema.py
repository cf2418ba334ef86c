"""The InfluxDB schema contract shared by the collector, the simulator's backfill, importers and the
forecaster (see docs/schema.md). Pure: names, tags and the derived totals.

Sign convention (one, everywhere): battery current and power are positive when CHARGING the battery,
negative when discharging (Victron's convention). Grid power is positive when importing.
"""

from __future__ import annotations

from collections.abc import Mapping

from bess_common.sample import FieldValue

BATTERY = "battery"  # tags: site, device (shunt | bms)
CELL = "cell"  # tags: site, device, cell (1..N)
SYSTEM = "system"  # tags: site
HEALTH = "collector_health"  # tags: site, host
# The long tail: every GX topic the tables do not map, on change; tags site, service, instance, path; one field
# of value (float), text (str) or invalid (true: the GX published null).
GX_TOPIC = "gx_topic"
# The plan the GX executes (collector/gx/plan.csv), one SNAPSHOT per change: every point of a snapshot has the
# same timestamp; tags site, kind (dess | ess_charge | settings), slot ("0", "1", ...; "all" for settings).
# The plan known at t = the points at the largest snapshot timestamp <= t (docs/schema.md, "gx_plan").
GX_PLAN = "gx_plan"
FORECAST = "forecast"
# A PV power forecast as issued: one point per (issue, period) stamped with the ISSUE time; tags site, provider,
# step (index within the issue); fields target_ns (start of the period, UTC ns), period_s, power_w (mean over
# the period). The forecast known at t = the points of the largest issue time <= t (docs/schema.md).
PV_FORECAST = "pv_forecast"
FORECAST_SCORE = "forecast_score"
# An outage a recording reports (Home Assistant `unknown` / `unavailable`), written by the importer; tags:
# site, target (measurement.field of the series it concerns) and that series' tags; fields: state (str),
# duration_s (until the next value, when the recording has one). The backtest's --hold-last stops there.
IMPORT_GAP = "import_gap"

# role (fields.csv) -> value of the `device` tag; system/settings rows carry no device tag.
DEVICE_TAG = {
    "shunt": "shunt",
    "bms": "bms",
    **{role: role for role in ("vebus", "multi", "acsystem", "grid", "acload", "pvinverter")},
}
# Roles with any number of instances: their rows carry tag instance=<D-Bus device instance>.
INSTANCE_TAGGED = frozenset({"vebus", "multi", "acsystem", "solarcharger", "grid", "acload", "pvinverter"})
INVERTER = "inverter"  # tags: site, device (vebus | multi | acsystem), instance
SOLARCHARGER = "solarcharger"  # tags: site, instance
METER = "meter"  # tags: site, device (grid | acload | pvinverter), instance

# Bookkeeping fields the grid adds to every row.
AGE_FIELD = "age_s"  # age in seconds of the oldest value included in the row
STALE_FIELD = "stale_fields"  # how many known fields of the row were left out as stale or absent


def row_tags(site: str, device: str, instance: int, battery: int, cell: int) -> dict[str, str]:
    """The tags of one measured row: site, then device, instance (>= 0), battery and cell where the row has one."""
    tags = {"site": site}
    if device:
        tags["device"] = device
    if instance >= 0:
        tags["instance"] = str(instance)
    if battery:
        tags["battery"] = str(battery)
    if cell:
        tags["cell"] = str(cell)
    return tags


_PV_AC = tuple(f"pv_ac_{kind}_l{n}_w" for kind in ("output", "grid") for n in (1, 2, 3))
_LOAD = ("load_l1_w", "load_l2_w", "load_l3_w")
_GRID = ("grid_l1_w", "grid_l2_w", "grid_l3_w")


def _sum_present(fields: Mapping[str, FieldValue], names: tuple[str, ...]) -> float | None:
    values = [float(fields[n]) for n in names if n in fields and not isinstance(fields[n], str)]
    return sum(values) if values else None


def derive_system_totals(fields: Mapping[str, FieldValue]) -> dict[str, FieldValue]:
    """Add pv_w (DC + AC-coupled PV), load_w and grid_w (sums over the phases present)."""
    out = dict(fields)
    pv_ac = _sum_present(fields, _PV_AC)
    pv_dc = float(fields["pv_dc_w"]) if "pv_dc_w" in fields else None
    if pv_ac is not None or pv_dc is not None:
        out["pv_w"] = (pv_ac or 0.0) + (pv_dc or 0.0)
    for total, names in (("load_w", _LOAD), ("grid_w", _GRID)):
        value = _sum_present(fields, names)
        if value is not None:
            out[total] = value
    return out
