"""The GX's D-Bus state derived from the physics: per-day columns keyed by (role, D-Bus path).

A column is either a constant (int, float, str or None) or a per-second numpy array for the day. Float
arrays use NaN for an invalid (None) value. `values_at` picks one second; `history` picks many at once.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

import numpy as np

from collector.simulator.physics import CAPACITY_AH, FORCE, BessPhysics, DayArrays
from collector.simulator.profiles import DAY_S

Key = tuple[str, str]
Column = Any  # np.ndarray | int | float | str | None
Value = float | int | str | None

DEFAULT_PORTAL_ID = "c0619ab2f4e1"
SHUNT_PRODUCT_ID = 0x0141
BMS_PRODUCT_ID = 0xB004
INVERTER_EFFICIENCY = 0.94
MODBUS_ONLY = frozenset({("system", "/Timestamp")})  # served from register 830, never a D-Bus topic
FLOAT32_ROLES = frozenset({"shunt"})
BALANCE_ABOVE_V = 3.45


def f32(x: np.ndarray) -> np.ndarray:
    """Doubles as a VE.Can float32 makes them (20.43 -> 20.43000030517578)."""
    return np.asarray(x, dtype=np.float32).astype(np.float64)


def _time_to_go_s(current_a: np.ndarray, soc: np.ndarray) -> np.ndarray:
    """Time to 10 % SoC at the 60 s mean discharge current; NaN (invalid) unless discharging."""
    csum = np.concatenate(([0.0], np.cumsum(current_a)))
    idx = np.arange(DAY_S)
    lo = np.maximum(idx - 59, 0)
    mean_a = (csum[idx + 1] - csum[lo]) / (idx + 1 - lo)
    out = np.full(DAY_S, np.nan)
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
        "/FirmwareVersion": 0x00032000,
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


def _shunt(a: DayArrays, day: int) -> dict[str, Column]:
    volts = f32(np.round(a.pack_v, 2))
    amps = f32(np.round(a.current_a, 1))
    age_days = max(day - 20_000, 0)
    out: dict[str, Column] = {
        "/Dc/0/Voltage": volts,
        "/Dc/0/Current": amps,
        "/Dc/0/Power": f32(np.round(volts * amps)),
        "/Dc/0/Temperature": f32(np.round(a.cell_t_c.mean(axis=0) - 0.4, 2)),
        "/Soc": f32(np.round(a.soc * 100.0, 1)),
        "/ConsumedAmphours": f32(-np.round((1.0 - a.soc) * CAPACITY_AH, 1)),
        "/TimeToGo": _time_to_go_s(a.current_a, a.soc),
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


def _arg_extreme(x: np.ndarray, lowest: bool) -> np.ndarray:
    """argmin/argmax over cells (axis 0), first index on ties; a loop over cells is faster than strided argmin."""
    best = x[0].copy()
    idx = np.zeros(x.shape[1], dtype=np.int64)
    for c in range(1, x.shape[0]):
        better = x[c] < best if lowest else x[c] > best
        idx[better] = c
        best[better] = x[c][better]
    return idx


def _bms_cells(a: DayArrays) -> dict[str, Column]:
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
        "/System/MinCellTemperature": cell_t.min(axis=0),
        "/System/MaxCellTemperature": cell_t.max(axis=0),
        "/System/MinTemperatureCellId": ids[_arg_extreme(cell_t, lowest=True)],
        "/System/MaxTemperatureCellId": ids[_arg_extreme(cell_t, lowest=False)],
        "/Balancing": flags.max(axis=0),
        "/Balancer/Status": np.where(flags.max(axis=0) > 0, 2, 1),
        "/Voltages/Sum": np.round(cell_v.sum(axis=0), 3),
        "/Voltages/Diff": np.round(vmax - vmin, 3),
        "/Info/MaxChargeCurrent": np.where(vmax > 3.45, 20.0, 140.0),
        "/Io/AllowToCharge": (vmax < 3.60).astype(np.int64),
        "/Io/AllowToDischarge": (vmin > 2.80).astype(np.int64),
        "/Alarms/CellImbalance": ((vmax - vmin) > 0.15).astype(np.int64),
        "/Alarms/LowCellVoltage": (vmin < 2.95).astype(np.int64),
    }
    for i in range(n):
        out[f"/Voltages/Cell{i + 1}"] = cell_v[i]
        out[f"/Balances/Cell{i + 1}"] = flags[i]
        out[f"/Temperatures/Cell{i + 1}"] = cell_t[i]
    return out


def _bms(a: DayArrays) -> dict[str, Column]:
    out = _bms_cells(a)
    volts = np.round(out["/Voltages/Sum"], 2)
    amps = np.round(a.current_a, 1)
    out.update(
        {
            "/Dc/0/Voltage": volts,
            "/Dc/0/Current": amps,
            "/Dc/0/Power": np.round(volts * amps),
            "/Dc/0/Temperature": np.round(a.cell_t_c.mean(axis=0), 1),
            "/Soc": np.round(a.soc * 100.0),
            "/Soh": 99.0,
            "/Capacity": CAPACITY_AH,
            "/System/NrOfCellsPerBattery": a.cell_v.shape[0],
            "/System/NrOfBatteries": 1,
            "/System/BatteriesParallel": 1,
            "/System/BatteriesSeries": 1,
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
            "/ProductId": BMS_PRODUCT_ID,
            "/ProductName": "CAN-bus BMS LFP",
            "/DeviceInstance": 512,
            "/Connected": 1,
            "/CustomName": "Shop pack",
            "/ConnectionInformation": "CAN-bus",
        }
    )
    for alarm in (
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
    ):
        out[f"/Alarms/{alarm}"] = 0
    return out


def _settings(a: DayArrays) -> dict[str, Column]:
    return {
        "/Settings/CGwacs/BatteryLife/State": np.where(a.regime == FORCE, 12, 10),
        "/Settings/CGwacs/BatteryLife/MinimumSocLimit": 20.0,
        "/Settings/CGwacs/Hub4Mode": 1,
        "/Settings/CGwacs/BatteryLife/SocLimit": 20.0,
    }


def day_columns(a: DayArrays, portal_id: str) -> dict[Key, Column]:
    """Every (role, path) of the simulated GX for one day."""
    shunt = _shunt(a, a.day)
    out: dict[Key, Column] = {}
    for role, paths in (
        ("system", _system(a, shunt, portal_id)),
        ("settings", _settings(a)),
        ("shunt", shunt),
        ("bms", _bms(a)),
    ):
        for path, column in paths.items():
            out[(role, path)] = column
    return out


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

    def __init__(self, physics: BessPhysics, portal_id: str = DEFAULT_PORTAL_ID, cache_days: int = 2) -> None:
        self.physics = physics
        self.portal_id = portal_id
        self._cache: OrderedDict[int, dict[Key, Column]] = OrderedDict()
        self._cache_days = cache_days
        self._lock = threading.Lock()

    def columns(self, day: int) -> dict[Key, Column]:
        """All columns of one UTC day (cached)."""
        with self._lock:
            found = self._cache.get(day)
            if found is not None:
                return found
        cols = day_columns(self.physics.day_arrays(day), self.portal_id)
        with self._lock:
            self._cache[day] = cols
            while len(self._cache) > self._cache_days:
                self._cache.popitem(last=False)
        return cols

    def values_at(self, t_s: int) -> dict[Key, Value]:
        """The value of every (role, path) at UTC second `t_s` (includes ("system", "/Timestamp"))."""
        day, i = divmod(int(t_s), DAY_S)
        out = {key: pick(col, i) for key, col in self.columns(day).items()}
        out[("system", "/Timestamp")] = int(t_s)
        return out
