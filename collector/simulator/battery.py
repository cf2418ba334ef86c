"""The battery side of the simulated GX: the Lynx Shunt (with its TimeToGo) and the BMS service, whose
per-cell paths come as (cells, n) blocks (collector.simulator.bms: which family publishes which)."""

from __future__ import annotations

import numpy as np

from collector.simulator.bms import REQUESTED_BATTERY, SMARTLITHIUM_ERRORS, BmsProfile
from collector.simulator.columns import Block, Column, Key
from collector.simulator.physics import CAPACITY_AH, DayArrays, sum_cells

SHUNT_PRODUCT_ID = 0x0141
BALANCE_ABOVE_V = 3.45


def f32(x: np.ndarray) -> np.ndarray:
    """Doubles as a VE.Can float32 makes them (20.43 -> 20.43000030517578)."""
    return np.asarray(x, dtype=np.float32).astype(np.float64)


def cell_mean(x: np.ndarray) -> np.ndarray:
    """Mean over cells (axis 0), span-independent to the bit (as np.mean: the sum divided by the count)."""
    return sum_cells(x) / x.shape[0]


def arg_extreme(x: np.ndarray, lowest: bool) -> np.ndarray:
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


def shunt_time_to_go_s(current_a: np.ndarray, soc: np.ndarray) -> np.ndarray:
    """Time to 10 % SoC at the 60 s mean discharge current; NaN (invalid) unless discharging (whole days)."""
    csum = np.concatenate(([0.0], np.cumsum(current_a)))
    idx = np.arange(len(current_a))
    lo = np.maximum(idx - 59, 0)
    mean_a = (csum[idx + 1] - csum[lo]) / (idx + 1 - lo)
    out = np.full(len(current_a), np.nan)
    discharging = (mean_a < -0.5) & (soc > 0.10)
    out[discharging] = (soc[discharging] - 0.10) * CAPACITY_AH * 3600.0 / -mean_a[discharging]
    return np.round(np.minimum(out, 864_000.0) / 60.0) * 60.0


def shunt_columns(a: DayArrays, day: int, time_to_go_s: np.ndarray) -> dict[str, Column]:
    volts = f32(np.round(a.pack_v, 2))
    amps = f32(np.round(a.current_a, 1))
    age_days = max(day - 20_000, 0)
    out: dict[str, Column] = {
        "/Dc/0/Voltage": volts,
        "/Dc/0/Current": amps,
        "/Dc/0/Power": f32(np.round(volts * amps)),
        "/Dc/0/Temperature": f32(np.round(cell_mean(a.cell_t_c) - 0.4, 2)),
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
    return [np.round(cell_mean(cell_t[g]), 1) if len(g) else np.full(cell_t.shape[1], np.nan) for g in groups]


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
        "/System/MinVoltageCellId": ids[arg_extreme(cell_v, lowest=True)],
        "/System/MaxVoltageCellId": ids[arg_extreme(cell_v, lowest=False)],
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
        out["/System/MOSTemperature"] = np.round(cell_mean(a.cell_t_c) + 4.0, 1)
        out["/System/MinCellTemperature"] = stack.min(axis=0)
        out["/System/MaxCellTemperature"] = stack.max(axis=0)
        out["/System/MinTemperatureCellId"] = names[arg_extreme(stack, lowest=True)]
        out["/System/MaxTemperatureCellId"] = names[arg_extreme(stack, lowest=False)]
    else:
        out["/System/MinCellTemperature"] = cell_t.min(axis=0)
        out["/System/MaxCellTemperature"] = cell_t.max(axis=0)
        out["/System/MinTemperatureCellId"] = ids[arg_extreme(cell_t, lowest=True)]
        out["/System/MaxTemperatureCellId"] = ids[arg_extreme(cell_t, lowest=False)]
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


def bms_columns(a: DayArrays, profile: BmsProfile) -> tuple[dict[str, Column], list[Block]]:
    out, blocks = _bms_cells(a, profile)
    volts = np.round(sum_cells(np.round(a.cell_v, 3)), 2)
    amps = np.round(a.current_a, 1)
    out.update(_bms_batteries(profile, a.cell_v.shape[0]))
    out.update(
        {
            "/Dc/0/Voltage": volts,
            "/Dc/0/Current": amps,
            "/Dc/0/Power": np.round(volts * amps),
            "/Dc/0/Temperature": np.round(cell_mean(a.cell_t_c), 1),
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
