"""The GX's D-Bus state derived from the physics: per-day columns keyed by (role, D-Bus path).

A column is either a constant (int, float, str or None) or a per-second numpy array for the day. Float
arrays use NaN for an invalid (None) value. `values_at` picks one second; `history` picks many at once.

`values_at` computes the day in chunks of `chunk_seconds(cells)` seconds (the whole day for a 16-cell
pack, two minutes for 16 384 cells), so memory and start time grow with cells x chunk, not cells x day;
the per-cell paths of a chunk stay (cells, n) matrices and one second of them is read in one go. The
values do not depend on the chunking (the physics is span-independent to the bit).
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np

from collector.simulator.bms import (
    DEFAULT_BMS,
    REQUESTED_BATTERY,
    SMARTLITHIUM_ERRORS,
    BmsProfile,
    bms_profile,
)
from collector.simulator.physics import CAPACITY_AH, FORCE, BessPhysics, DayArrays, sum_cells
from collector.simulator.profiles import DAY_S
from collector.simulator.schedule import (
    DESS_MODE,
    ESS_CHARGE,
    ISSUE_S,
    TIME_ZONE,
    Schedule,
    dess_slot_values,
)

Key = tuple[str, str]
Column = Any  # np.ndarray | int | float | str | None
Value = float | int | str | None

DEFAULT_PORTAL_ID = "c0619ab2f4e1"
# Venus OS v3.60 as dbus-systemcalc-py publishes it on /FirmwareVersion: the version's digits read as hex,
# (major << 16) + (minor << 8) + beta (victronenergy/dbus-systemcalc-py @9730db0, dbus_systemcalc.py,
# _get_venus_versioninfo); com.victronenergy.platform names the same release "v3.60".
VENUS_VERSION = 0x036000
VENUS_VERSION_TEXT = "v3.60"
SYSTEM_NAME = "Shop BESS"
SHUNT_PRODUCT_ID = 0x0141
INVERTER_EFFICIENCY = 0.94
MODBUS_ONLY = frozenset({("system", "/Timestamp")})  # served from register 830, never a D-Bus topic
BALANCE_ABOVE_V = 3.45
CHUNK_CELL_SECONDS = 2_000_000  # cells x seconds computed at once by values_at (~16 MB per float matrix)
CHUNK_CHOICES_S = (86_400, 43_200, 21_600, 10_800, 7_200, 3_600, 1_800, 900, 600, 300, 120, 60)


def chunk_seconds(cells: int) -> int:
    """The span values_at computes at once: the longest choice within CHUNK_CELL_SECONDS (at least 60 s)."""
    for chunk_s in CHUNK_CHOICES_S:
        if cells * chunk_s <= CHUNK_CELL_SECONDS:
            return chunk_s
    return CHUNK_CHOICES_S[-1]


def f32(x: np.ndarray) -> np.ndarray:
    """Doubles as a VE.Can float32 makes them (20.43 -> 20.43000030517578)."""
    return np.asarray(x, dtype=np.float32).astype(np.float64)


def _time_to_go_s(current_a: np.ndarray, soc: np.ndarray) -> np.ndarray:
    """Time to 10 % SoC at the 60 s mean discharge current; NaN (invalid) unless discharging (whole days)."""
    csum = np.concatenate(([0.0], np.cumsum(current_a)))
    idx = np.arange(len(current_a))
    lo = np.maximum(idx - 59, 0)
    mean_a = (csum[idx + 1] - csum[lo]) / (idx + 1 - lo)
    out = np.full(len(current_a), np.nan)
    discharging = (mean_a < -0.5) & (soc > 0.10)
    out[discharging] = (soc[discharging] - 0.10) * CAPACITY_AH * 3600.0 / -mean_a[discharging]
    return np.round(np.minimum(out, 864_000.0) / 60.0) * 60.0


def _system(a: DayArrays, shunt: dict[str, Column], portal_id: str) -> dict[str, Column]:
    inverter_dc_w = shunt["/Dc/0/Power"] + a.dc_system_w - a.pv_w  # + = the inverter charges from AC
    inverter_ac_w = np.where(
        inverter_dc_w > 0, inverter_dc_w / INVERTER_EFFICIENCY, inverter_dc_w * INVERTER_EFFICIENCY
    )
    load_w = np.round(a.load_w)
    out: dict[str, Column] = {
        "/Serial": portal_id,
        "/FirmwareVersion": VENUS_VERSION,
        "/Relay/0/State": 0,
        "/Relay/1/State": 0,
        "/Ac/ActiveIn/Source": 1,
        "/Ac/Consumption/L1/Power": load_w,
        "/Ac/Grid/L1/Power": np.round(load_w + inverter_ac_w),
        "/Ac/ConsumptionOnOutput/L1/Power": load_w,
        "/Ac/ConsumptionOnInput/L1/Power": 0.0,
        "/Dc/Battery/Voltage": shunt["/Dc/0/Voltage"],
        "/Dc/Battery/Current": shunt["/Dc/0/Current"],
        "/Dc/Battery/Power": shunt["/Dc/0/Power"],
        "/Dc/Battery/Soc": shunt["/Soc"],
        "/Dc/Battery/State": np.where(shunt["/Dc/0/Power"] > 30, 1, np.where(shunt["/Dc/0/Power"] < -30, 2, 0)),
        "/Dc/Battery/ConsumedAmphours": shunt["/ConsumedAmphours"],
        "/Dc/Battery/TimeToGo": shunt["/TimeToGo"],
        "/Dc/Pv/Power": np.round(a.pv_w),
        "/Dc/Pv/Current": np.round(a.pv_w / a.pack_v, 1),
        "/Dc/System/Power": np.round(a.dc_system_w),
        "/Dc/Charger/Power": None,  # no DC charger on this site: dbus-systemcalc leaves the path invalid
        "/Dc/Vebus/Current": np.round(inverter_dc_w / a.pack_v, 1),
        "/Dc/Vebus/Power": np.round(inverter_dc_w),
        "/Dc/InverterCharger/Current": np.round(inverter_dc_w / a.pack_v, 1),
        "/Dc/InverterCharger/Power": np.round(inverter_dc_w),
    }
    for phase in ("L2", "L3"):
        for kind in ("Consumption", "Grid", "ConsumptionOnOutput", "ConsumptionOnInput"):
            out[f"/Ac/{kind}/{phase}/Power"] = None
    for phase in ("L1", "L2", "L3"):
        for kind in ("PvOnOutput", "PvOnGrid", "PvOnGenset", "Genset"):
            out[f"/Ac/{kind}/{phase}/Power"] = None
    return out


# The simulator's multi-instance devices: its key role -> (the GX service, which is the collector's role, and
# the device instance). The inverter/charger is either a Multi on VE.Bus (vebus/276, the Cerbo's VE.Bus port)
# or a Multi RS on VE.Can (multi/0): `INVERTERS`, chosen per simulator; the other one is absent.
DEVICES: dict[str, tuple[str, int]] = {
    "vebus": ("vebus", 276),
    "multi": ("multi", 0),
    "mppt1": ("solarcharger", 279),
    "mppt2": ("solarcharger", 280),
    "grid": ("grid", 30),
}
INVERTERS = ("vebus", "multi")
AC_V = 230.0
AC_HZ = 50.0
MPPT_SHARE = 0.6  # the first solar charger's part of the PV power, the second one takes the rest


def _ac_volts(a: DayArrays) -> np.ndarray:
    """The grid voltage: 230 V with a slow deterministic wander of +-3 V (s = second of the day)."""
    s = a.start_s + np.arange(len(a.pv_w))
    return np.round(AC_V + 3.0 * np.sin(2 * np.pi * s / 5400.0), 1)


def _devices(a: DayArrays, system: dict[str, Column], inverter: str = "vebus") -> dict[str, dict[str, Column]]:
    """The inverter/charger (vebus/276 or multi/0), two MPPTs (solarcharger/279, 280) and the grid meter (grid/30):
    their powers are the system totals' (AC in = grid, AC out = consumption, DC = /Dc/Vebus/Power, the MPPTs'
    sum = /Dc/Pv/Power)."""
    volts = _ac_volts(a)
    pack_v = np.round(a.pack_v, 2)
    grid_w, load_w, dc_w = system["/Ac/Grid/L1/Power"], system["/Ac/Consumption/L1/Power"], system["/Dc/Vebus/Power"]
    if inverter not in INVERTERS:
        raise ValueError(f"unknown inverter {inverter!r}; known: {', '.join(INVERTERS)}")
    vebus: dict[str, Column] = {
        "/Ac/ActiveIn/L1/V": volts,
        "/Ac/ActiveIn/L1/I": np.round(grid_w / volts, 1),
        "/Ac/ActiveIn/L1/F": AC_HZ,
        "/Ac/ActiveIn/L1/P": grid_w,
        "/Ac/Out/L1/V": volts,
        "/Ac/Out/L1/I": np.round(load_w / volts, 1),
        "/Ac/Out/L1/F": AC_HZ,
        "/Ac/Out/L1/P": load_w,
        "/Ac/ActiveIn/ActiveInput": 0,
        "/Ac/NumberOfPhases": 1,
        "/Dc/0/Voltage": pack_v,
        "/Dc/0/Current": system["/Dc/Vebus/Current"],
        "/Dc/0/Power": dc_w,
        "/State": np.where(dc_w > 30, 3, np.where(dc_w < -30, 9, 8)),  # bulk / inverting / passthru
        "/Mode": 3,
        "/VebusError": 0,
        "/Hub4/L1/AcPowerSetpoint": 0.0,
        "/ProductName": "MultiPlus-II 48/5000/70-50",
        **{f"/Alarms/{alarm}": 0 for alarm in ("HighTemperature", "LowBattery", "Overload", "L1/Ripple")},
        # a single-phase unit publishes its L2/L3 paths as invalid (victronenergy/gui-v2 @3bdc924,
        # data/mock/conf/services/quattro-1phase-shore-generator.json; the Multi RS alike, multirs-smart.json)
        **{f"/Ac/{side}/{ph}/{q}": None for side in ("ActiveIn", "Out") for ph in ("L2", "L3") for q in "VIPF"},
    }
    pv_w = system["/Dc/Pv/Power"]
    first = np.round(pv_w * MPPT_SHARE)
    out = {inverter: vebus if inverter == "vebus" else _multi_rs(vebus), "grid": _meter(volts, grid_w)}
    for role, power in (("mppt1", first), ("mppt2", pv_w - first)):
        pv_v = np.round(np.where(power > 0, 110.0 + 0.004 * power, 0.0), 2)
        out[role] = {
            "/Yield/Power": power,
            "/Pv/V": pv_v,
            "/Pv/I": np.round(np.divide(power, pv_v, out=np.zeros_like(power), where=pv_v > 0), 1),
            "/Dc/0/Voltage": pack_v,
            "/Dc/0/Current": np.round(power / a.pack_v, 1),
            "/State": np.where(power > 0, 3, 0),
            "/Mode": 1,
            "/ErrorCode": 0,
            "/MppOperationMode": np.where(power > 0, 2, 0),
            "/ProductName": "SmartSolar MPPT 150/45",
        }
    return out


def _multi_rs(vebus: dict[str, Column]) -> dict[str, Column]:
    """The same inverter/charger as a Multi RS (com.victronenergy.multi): AC input 1 at /Ac/In/1, its error
        at /ErrorCode, battery alarms at /Alarms/LowVoltage; its own PV input unused (0 W, no voltage: the MPPTs carry
    the PV).
        Paths as dbus-systemcalc-py reads them (victronenergy/dbus-systemcalc-py @9730db0, dbus_systemcalc.py) and
        attributes.csv of dbus_modbustcp lists them (4500-4545)."""
    out: dict[str, Column] = {
        path.replace("/Ac/ActiveIn/L", "/Ac/In/1/L"): column
        for path, column in vebus.items()
        if not path.startswith(("/Hub4/", "/Alarms/", "/VebusError"))
    }
    out.update(
        {
            "/Ac/In/1/Type": 1,  # grid
            "/Ac/In/1/CurrentLimit": 32.0,
            "/ErrorCode": 0,
            "/Yield/Power": 0.0,
            "/Pv/V": None,  # invalid while it has no PV (gui-v2 @caccb5e, data/mock/conf/services/multirs-smart.json)
            "/Ess/AcPowerSetpoint": 0.0,
            "/Ess/DisableCharge": 0,
            "/Ess/DisableFeedIn": 0,
            "/ProductName": "Multi RS Solar 48V/6000VA/100A",
            **{f"/Alarms/{alarm}": 0 for alarm in ("HighTemperature", "LowVoltage", "Overload", "Ripple")},
        }
    )
    return out


def _meter(volts: np.ndarray, power_w: np.ndarray) -> dict[str, Column]:
    return {
        "/Ac/Power": power_w,
        "/Ac/L1/Power": power_w,
        "/Ac/L1/Voltage": volts,
        "/Ac/L1/Current": np.round(power_w / volts, 1),
        "/Ac/Frequency": AC_HZ,
        "/ProductName": "Energy Meter ET112",
    }


def _shunt(a: DayArrays, day: int, time_to_go_s: np.ndarray) -> dict[str, Column]:
    volts = f32(np.round(a.pack_v, 2))
    amps = f32(np.round(a.current_a, 1))
    age_days = max(day - 20_000, 0)
    out: dict[str, Column] = {
        "/Dc/0/Voltage": volts,
        "/Dc/0/Current": amps,
        "/Dc/0/Power": f32(np.round(volts * amps)),
        "/Dc/0/Temperature": f32(np.round(_cell_mean(a.cell_t_c) - 0.4, 2)),
        "/Soc": f32(np.round(a.soc * 100.0, 1)),
        "/ConsumedAmphours": f32(-np.round((1.0 - a.soc) * CAPACITY_AH, 1)),
        "/TimeToGo": time_to_go_s,
        "/Dc/0/MidVoltage": None,  # no midpoint wired: invalid (Modbus 263/264 read 0)
        "/Dc/0/MidVoltageDeviation": None,
        "/History/DeepestDischarge": -201.5,
        "/History/LastDischarge": -96.3,
        "/History/AverageDischarge": -88.0,
        "/History/ChargeCycles": 40 + int(age_days * 0.6),
        "/History/FullDischarges": 0,
        "/History/TotalAhDrawn": -float(1000 + age_days % 5000),
        "/History/MinimumVoltage": 50.12,
        "/History/MaximumVoltage": 57.31,
        "/History/AutomaticSyncs": 7,
        "/History/LowVoltageAlarms": 0,
        "/History/HighVoltageAlarms": 0,
        "/History/DischargedEnergy": float(50 + age_days % 6000),
        "/History/ChargedEnergy": float(53 + age_days % 6000),
        "/ProductId": SHUNT_PRODUCT_ID,
        "/ProductName": "Lynx Shunt 1000A VE.Can",
        "/DeviceInstance": 0,
        "/Connected": 1,
        "/FirmwareVersion": 0x0110,
        "/Serial": "HQ2143XK4QR",
        "/CustomName": "Lynx Shunt",
    }
    for alarm in (
        "Alarm",
        "LowVoltage",
        "HighVoltage",
        "LowSoc",
        "LowTemperature",
        "HighTemperature",
        "FuseBlown",
        "HighInternalTemperature",
    ):
        out[f"/Alarms/{alarm}"] = 0
    return out


def balance_flags(cell_v: np.ndarray) -> np.ndarray:
    """Top balancing: cells above 3.45 V within 15 mV of the highest cell bleed (cells x seconds, 0/1)."""
    vmax = cell_v.max(axis=0)
    return ((cell_v > BALANCE_ABOVE_V) & (cell_v >= vmax[None, :] - 0.015)).astype(np.int64)


def _cell_mean(x: np.ndarray) -> np.ndarray:
    """Mean over cells (axis 0), span-independent to the bit (as np.mean: the sum divided by the count)."""
    return sum_cells(x) / x.shape[0]


def _arg_extreme(x: np.ndarray, lowest: bool) -> np.ndarray:
    """argmin/argmax over cells (axis 0), first index on ties; a loop over cells is faster than strided argmin."""
    if x.shape[0] > 64:
        return np.argmin(x, axis=0) if lowest else np.argmax(x, axis=0)
    best = x[0].copy()
    idx = np.zeros(x.shape[1], dtype=np.int64)
    for c in range(1, x.shape[0]):
        better = x[c] < best if lowest else x[c] > best
        idx[better] = c
        best[better] = x[c][better]
    return idx


Block = tuple[tuple[Key, ...], np.ndarray]  # the keys of the rows of a (cells, n) matrix
BMS_ALARMS = (
    "Alarm",
    "LowVoltage",
    "HighVoltage",
    "LowSoc",
    "LowTemperature",
    "HighTemperature",
    "HighChargeCurrent",
    "HighDischargeCurrent",
    "InternalFailure",
    "HighChargeTemperature",
    "LowChargeTemperature",
)


def _cell_keys(template: str, cells: range, per_battery: int) -> tuple[Key, ...]:
    """The (bms, path) keys of cells (0-based), numbered per battery when the template has '{b}'."""
    return tuple(
        (
            "bms",
            template.format(b=i // per_battery + 1, n=i % per_battery + 1)
            if "{b}" in template
            else template.format(n=i + 1),
        )
        for i in cells
    )


def _sensor_temperatures(cell_t: np.ndarray) -> list[np.ndarray]:
    """Four BMS sensors, each on a quarter of the pack (the mean of its cells), as serialbattery has them."""
    groups = np.array_split(np.arange(cell_t.shape[0]), 4)
    return [np.round(_cell_mean(cell_t[g]), 1) if len(g) else np.full(cell_t.shape[1], np.nan) for g in groups]


def _bms_cells(a: DayArrays, profile: BmsProfile) -> tuple[dict[str, Column], list[Block]]:
    n = a.cell_v.shape[0]
    cell_v = np.round(a.cell_v, 3)
    cell_t = np.round(a.cell_t_c, 1)
    vmax, vmin = cell_v.max(axis=0), cell_v.min(axis=0)
    flags = balance_flags(cell_v)
    ids = np.array([f"C{i + 1}" for i in range(n)])
    out: dict[str, Column] = {
        "/System/MinCellVoltage": vmin,
        "/System/MaxCellVoltage": vmax,
        "/System/MinVoltageCellId": ids[_arg_extreme(cell_v, lowest=True)],
        "/System/MaxVoltageCellId": ids[_arg_extreme(cell_v, lowest=False)],
        "/Balancing": flags.max(axis=0),
        "/Balancer/Status": np.where(flags.max(axis=0) > 0, 2, 1),
        "/Info/MaxChargeCurrent": np.where(vmax > 3.45, 20.0, 140.0),
        "/Io/AllowToCharge": (vmax < 3.60).astype(np.int64),
        "/Io/AllowToDischarge": (vmin > 2.80).astype(np.int64),
        "/Alarms/CellImbalance": ((vmax - vmin) > 0.15).astype(np.int64),
        "/Alarms/LowCellVoltage": (vmin < 2.95).astype(np.int64),
    }
    if profile.sensors:  # serialbattery: min/max "cell" temperature is over its sensors, named by config
        sensors = _sensor_temperatures(a.cell_t_c)
        stack = np.vstack(sensors)
        names = np.array([f"Temp {k}" for k in range(1, 5)])
        for k, column in enumerate(sensors, start=1):
            out[f"/System/Temperature{k}"] = column
            out[f"/System/Temperature{k}Name"] = f"Temp {k}"
        out["/System/MOSTemperature"] = np.round(_cell_mean(a.cell_t_c) + 4.0, 1)
        out["/System/MinCellTemperature"] = stack.min(axis=0)
        out["/System/MaxCellTemperature"] = stack.max(axis=0)
        out["/System/MinTemperatureCellId"] = names[_arg_extreme(stack, lowest=True)]
        out["/System/MaxTemperatureCellId"] = names[_arg_extreme(stack, lowest=False)]
    else:
        out["/System/MinCellTemperature"] = cell_t.min(axis=0)
        out["/System/MaxCellTemperature"] = cell_t.max(axis=0)
        out["/System/MinTemperatureCellId"] = ids[_arg_extreme(cell_t, lowest=True)]
        out["/System/MaxTemperatureCellId"] = ids[_arg_extreme(cell_t, lowest=False)]
    if profile.cell_summary is not None:
        out[f"{profile.cell_summary}/Sum"] = np.round(sum_cells(cell_v), 2)
        out[f"{profile.cell_summary}/Diff"] = np.round(vmax - vmin, 3)
    per_battery = n // profile.batteries if n % profile.batteries == 0 else n
    blocks: list[Block] = []
    if profile.cell_voltage is not None:
        blocks.append((_cell_keys(profile.cell_voltage, range(n), per_battery), cell_v))
    if profile.cell_balances:
        blocks.append((_cell_keys("/Balances/Cell{n}", range(n), per_battery), flags))
    if profile.cell_temperature is not None:  # only the battery selected by /Battery/Request/Id
        first = (REQUESTED_BATTERY - 1) * per_battery
        chosen = range(first, first + per_battery)
        blocks.append((_cell_keys(profile.cell_temperature, chosen, per_battery), cell_t[first : first + per_battery]))
    return out, blocks


def _bms_batteries(profile: BmsProfile, cells: int) -> dict[str, Column]:
    """The multi-battery paths of a Lynx Smart BMS NG: batteries in series, the requested one, serials."""
    count = profile.batteries if cells % profile.batteries == 0 else 1
    out: dict[str, Column] = {
        "/System/NrOfBatteries": count,
        "/System/BatteriesParallel": 1,
        "/System/BatteriesSeries": count,
        "/System/NrOfCellsPerBattery": cells // count,
    }
    if profile.cell_temperature is not None:
        out["/Battery/Request/Id"] = REQUESTED_BATTERY
        for b in range(1, count + 1):
            out[f"/Battery/{b}/Serial"] = f"HQ2412B{b:04d}"
    if profile.smartlithium_errors:
        for name in SMARTLITHIUM_ERRORS:
            out[f"/Errors/SmartLithium/{name}"] = 0
    return out


def _bms(a: DayArrays, profile: BmsProfile) -> tuple[dict[str, Column], list[Block]]:
    out, blocks = _bms_cells(a, profile)
    volts = np.round(sum_cells(np.round(a.cell_v, 3)), 2)
    amps = np.round(a.current_a, 1)
    out.update(_bms_batteries(profile, a.cell_v.shape[0]))
    out.update(
        {
            "/Dc/0/Voltage": volts,
            "/Dc/0/Current": amps,
            "/Dc/0/Power": np.round(volts * amps),
            "/Dc/0/Temperature": np.round(_cell_mean(a.cell_t_c), 1),
            "/Soc": np.round(a.soc * 100.0),
            "/Soh": 99.0,
            "/Capacity": CAPACITY_AH,
            "/System/NrOfModulesOnline": 1,
            "/System/NrOfModulesOffline": 0,
            "/System/NrOfModulesBlockingCharge": 0,
            "/System/NrOfModulesBlockingDischarge": 0,
            "/Info/MaxChargeVoltage": round(3.5 * a.cell_v.shape[0], 2),
            "/Info/BatteryLowVoltage": round(3.0 * a.cell_v.shape[0], 2),
            "/Info/MaxDischargeCurrent": 150.0,
            "/Io/ExternalRelay": 0,
            "/State": 9,
            "/ErrorCode": 0,
            "/Mode": 3,
            "/History/MinimumCellVoltage": 2.95,
            "/History/MaximumCellVoltage": 3.62,
            "/ProductId": profile.product_id,
            "/ProductName": profile.product_name,
            "/DeviceInstance": 512,
            "/Connected": 1,
            "/CustomName": "Shop pack",
            "/ConnectionInformation": profile.connection,
            "/FirmwareVersion": profile.firmware_version,
            "/Serial": profile.serial,
        }
    )
    for alarm in (*BMS_ALARMS, *profile.extra_alarms):
        out[f"/Alarms/{alarm}"] = 0
    return out, blocks


def _platform() -> dict[str, Column]:
    """com.victronenergy.platform: what clients read to identify the GX (victronenergy/gui-v2 @2ffcc3c reads
    /Firmware/Installed/Version in pages/settings/PageSettingsFirmware.qml; its mock has /Device/Model)."""
    return {"/Firmware/Installed/Version": VENUS_VERSION_TEXT, "/Device/Model": "Cerbo GX"}


# The settings that do not change in the simulation (the ESS windows: collector/simulator/schedule.py).
STATIC_SETTINGS: dict[str, Value] = {
    "/Settings/SystemSetup/SystemName": SYSTEM_NAME,
    "/Settings/CGwacs/BatteryLife/MinimumSocLimit": 20.0,
    "/Settings/CGwacs/Hub4Mode": 1,
    "/Settings/CGwacs/BatteryLife/SocLimit": 20.0,
    "/Settings/System/TimeZone": TIME_ZONE,
    "/Settings/DynamicEss/Mode": DESS_MODE,
}
for _n, (_day, _start, _duration, _soc, _discharge) in enumerate(ESS_CHARGE):
    _base = f"/Settings/CGwacs/BatteryLife/Schedule/Charge/{_n}"
    STATIC_SETTINGS.update(
        {
            f"{_base}/Day": _day,
            f"{_base}/Start": _start,
            f"{_base}/Duration": _duration,
            f"{_base}/Soc": _soc,
            f"{_base}/AllowDischarge": _discharge,
        }
    )


def settings_at(schedule: Schedule, t_s: int) -> dict[Key, Value]:
    """The settings service's plan-related values at UTC second t_s without computing the day (the same values
    values_at gives: the backfill's gx_plan snapshots are built from them)."""
    out: dict[Key, Value] = {("settings", path): value for path, value in STATIC_SETTINGS.items()}
    for n, slot in enumerate(dess_slot_values(schedule.plan_at(t_s))):
        for name, value in slot.items():
            out[("settings", f"/Settings/DynamicEss/Schedule/{n}/{name}")] = value
    return out


def _settings(a: DayArrays) -> dict[str, Column]:
    out: dict[str, Column] = dict(STATIC_SETTINGS)
    out["/Settings/CGwacs/BatteryLife/State"] = np.where(a.regime == FORCE, 12, 10)
    if a.schedule is not None:
        out.update(_dess_slots(a, a.schedule))
    return out


def _dess_slots(a: DayArrays, schedule: Schedule) -> dict[str, Column]:
    """The 48 Dynamic ESS slots over the span: the plan issued the day before until ISSUE_S, then the day's."""
    seconds = a.start_s + np.arange(len(a.regime))
    before = dess_slot_values(schedule.issued(a.day - 1))
    after = dess_slot_values(schedule.issued(a.day))
    out: dict[str, Column] = {}
    for n, (old, new) in enumerate(zip(before, after, strict=True)):
        for name, value in old.items():
            if value == new[name] or seconds[0] >= ISSUE_S:
                column: Column = new[name]
            elif seconds[-1] < ISSUE_S:
                column = value
            else:
                column = np.where(seconds < ISSUE_S, value, new[name])
            out[f"/Settings/DynamicEss/Schedule/{n}/{name}"] = column
    return out


def _dynamic_ess(a: DayArrays, battery_power_w: np.ndarray) -> dict[str, Column]:
    """com.victronenergy.system's /DynamicEss/*: what dbus-systemcalc-py's delegate shows while a slot runs
    (active, its target SoC, strategy, restrictions and feed-in, the charge rate in W) and after it (off,
    target 0, those invalid, error 3 "no matching schedule"; dbus-systemcalc-py @9730db0,
    delegates/dynamicess.py, deactivate()). The error's 60 s delay (ERROR_TIMEOUT) is not simulated."""
    active = a.regime == FORCE
    target = np.zeros(len(a.regime))
    if a.schedule is not None:
        seconds = a.start_s + np.arange(len(a.regime))
        for w in a.schedule.executed(a.day):
            lo, hi = w.start_s - a.day * DAY_S, w.end_s - a.day * DAY_S
            target[(seconds >= lo) & (seconds < hi)] = w.soc_pct
    invalid = np.where(active, 0.0, np.nan)
    return {
        "/DynamicEss/Available": 1,
        "/DynamicEss/Active": active.astype(np.int64),
        "/DynamicEss/TargetSoc": np.where(active, target, 0.0),
        "/DynamicEss/Strategy": invalid,
        "/DynamicEss/Restrictions": invalid,
        "/DynamicEss/AllowGridFeedIn": invalid,
        "/DynamicEss/ChargeRate": np.where(active, np.maximum(np.round(battery_power_w), 0.0), np.nan),
        "/DynamicEss/ErrorCode": np.where(active, 0, 3),
    }


@dataclass(frozen=True, slots=True)
class Chunk:
    """The columns of seconds [start_s, start_s + n) of a day: per-cell paths kept as (cells, n) blocks."""

    day: int
    start_s: int
    columns: dict[Key, Column]  # every path but the per-cell ones
    blocks: tuple[Block, ...]

    def merged(self) -> dict[Key, Column]:
        """One column per (role, path), the per-cell ones as rows of their block (views, no copy)."""
        out = dict(self.columns)
        for keys, matrix in self.blocks:
            for i, key in enumerate(keys):
                out[key] = matrix[i]
        return out

    def values(self, i: int) -> dict[Key, Value]:
        """Every (role, path) at index i of the chunk as plain Python values (NaN -> None)."""
        out = {key: pick(col, i) for key, col in self.columns.items()}
        for keys, matrix in self.blocks:
            column = matrix[:, i]
            values: list[Any] = column.tolist()
            if column.dtype.kind == "f" and np.isnan(column).any():
                values = [None if math.isnan(v) else v for v in values]
            out.update(zip(keys, values, strict=True))
        return out


def chunk_columns(
    a: DayArrays,
    portal_id: str,
    time_to_go_s: np.ndarray | None = None,
    bms: BmsProfile | None = None,
    inverter: str = "vebus",
) -> Chunk:
    """Every (role, path) of the simulated GX for the span `a` (time_to_go_s: the span's slice of the day's
    time-to-go; computed from `a` when None, which needs `a` to be the whole day; bms: the BMS family;
    inverter: one of INVERTERS)."""
    ttg = _time_to_go_s(a.current_a, a.soc) if time_to_go_s is None else time_to_go_s
    shunt = _shunt(a, a.day, ttg)
    bms_paths, blocks = _bms(a, bms or bms_profile(DEFAULT_BMS))
    out: dict[Key, Column] = {}
    system = _system(a, shunt, portal_id)
    system.update(_dynamic_ess(a, shunt["/Dc/0/Power"]))
    for role, paths in (
        ("system", system),
        *_devices(a, system, inverter).items(),
        ("settings", _settings(a)),
        ("platform", _platform()),
        ("shunt", shunt),
        ("bms", bms_paths),
    ):
        for path, column in paths.items():
            out[(role, path)] = column
    return Chunk(a.day, a.start_s, out, tuple(blocks))


def day_columns(
    a: DayArrays, portal_id: str, bms: BmsProfile | None = None, inverter: str = "vebus"
) -> dict[Key, Column]:
    """Every (role, path) of the simulated GX for one whole day."""
    return chunk_columns(a, portal_id, bms=bms, inverter=inverter).merged()


def pick(column: Column, i: int) -> Value:
    """One second of a column as a plain Python value (NaN -> None)."""
    if not isinstance(column, np.ndarray):
        return column
    v = column[i]
    if column.dtype.kind == "f":
        return None if np.isnan(v) else float(v)
    if column.dtype.kind in "iub":
        return int(v)
    return str(v)


class Truth:
    """values_at(t_s): the GX's D-Bus state at a UTC second, at full precision (None = invalid)."""

    def __init__(
        self,
        physics: BessPhysics,
        portal_id: str = DEFAULT_PORTAL_ID,
        cache_days: int = 2,
        bms: str = DEFAULT_BMS,
        inverter: str = "vebus",
    ) -> None:
        if inverter not in INVERTERS:
            raise ValueError(f"unknown inverter {inverter!r}; known: {', '.join(INVERTERS)}")
        self.inverter = inverter
        self.physics = physics
        self.portal_id = portal_id
        self.bms = bms_profile(bms)
        self.chunk_s = chunk_seconds(physics.cells)
        self._cache: OrderedDict[tuple[int, int], Chunk] = OrderedDict()
        self._cache_n = cache_days if self.chunk_s == DAY_S else max(cache_days, 3)
        self._ttg: OrderedDict[int, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self._last: tuple[int, dict[Key, Value]] | None = None

    def columns(self, day: int) -> dict[Key, Column]:
        """All columns of one whole UTC day (cached when values_at computes whole days too)."""
        if self.chunk_s == DAY_S:
            return self.chunk(day, 0).merged()
        return day_columns(self.physics.day_arrays(day), self.portal_id, self.bms, self.inverter)

    def prefetch(self, t_s: int) -> None:
        """Compute the chunk holding UTC second t_s ahead of time (a no-op when it is cached)."""
        day, i = divmod(int(t_s), DAY_S)
        self.chunk(day, i // self.chunk_s * self.chunk_s)

    def values_at(self, t_s: int) -> dict[Key, Value]:
        """The value of every (role, path) at UTC second `t_s` (includes ("system", "/Timestamp"))."""
        return dict(self.shared_values_at(t_s))

    def shared_values_at(self, t_s: int) -> dict[Key, Value]:
        """values_at without the copy: the same dict for every call within one second; never modify it."""
        t_s = int(t_s)
        last = self._last
        if last is not None and last[0] == t_s:
            return last[1]
        day, i = divmod(t_s, DAY_S)
        start = i // self.chunk_s * self.chunk_s
        out = self.chunk(day, start).values(i - start)
        out[("system", "/Timestamp")] = t_s
        self._last = (t_s, out)
        return out

    def chunk(self, day: int, start_s: int) -> Chunk:
        """The columns of seconds [start_s, start_s + chunk_s) of `day` (start_s a multiple of chunk_s); cached."""
        with self._lock:
            found = self._cache.get((day, start_s))
            if found is not None:
                self._cache.move_to_end((day, start_s))
                return found
        end_s = min(start_s + self.chunk_s, DAY_S)
        if start_s == 0 and end_s == DAY_S:
            chunk = chunk_columns(self.physics.day_arrays(day), self.portal_id, bms=self.bms, inverter=self.inverter)
        else:
            arrays = self.physics.span_arrays(day, start_s, end_s)
            ttg = self._time_to_go(day)[start_s:end_s]
            chunk = chunk_columns(arrays, self.portal_id, ttg, self.bms, self.inverter)
        with self._lock:
            self._cache[(day, start_s)] = chunk
            while len(self._cache) > self._cache_n:
                self._cache.popitem(last=False)
        return chunk

    def _time_to_go(self, day: int) -> np.ndarray:
        """The shunt's TimeToGo for the whole day (a 60 s running mean of the pack current; cheap)."""
        with self._lock:
            found = self._ttg.get(day)
        if found is None:
            pack = self.physics.pack_day(day)
            found = _time_to_go_s(pack.current_a, pack.soc)
            with self._lock:
                self._ttg[day] = found
                while len(self._ttg) > 2:
                    self._ttg.popitem(last=False)
        return found
