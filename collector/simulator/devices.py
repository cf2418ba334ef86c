"""com.victronenergy.system and the AC side of the simulated GX: the system totals, the inverter/charger
(a Multi on VE.Bus or a Multi RS), two MPPTs, the grid meter and the platform service."""

from __future__ import annotations

import numpy as np

from collector.simulator.columns import Column
from collector.simulator.physics import DayArrays

# Venus OS v3.60 as dbus-systemcalc-py publishes it on /FirmwareVersion: the version's digits read as hex,
# (major << 16) + (minor << 8) + beta (victronenergy/dbus-systemcalc-py @9730db0, dbus_systemcalc.py,
# _get_venus_versioninfo); com.victronenergy.platform names the same release "v3.60".
VENUS_VERSION = 0x036000
VENUS_VERSION_TEXT = "v3.60"
INVERTER_EFFICIENCY = 0.94


def system_columns(a: DayArrays, shunt: dict[str, Column], portal_id: str) -> dict[str, Column]:
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


def device_columns(a: DayArrays, system: dict[str, Column], inverter: str = "vebus") -> dict[str, dict[str, Column]]:
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


def platform_columns() -> dict[str, Column]:
    """com.victronenergy.platform: what clients read to identify the GX (victronenergy/gui-v2 @2ffcc3c reads
    /Firmware/Installed/Version in pages/settings/PageSettingsFirmware.qml; its mock has /Device/Model)."""
    return {"/Firmware/Installed/Version": VENUS_VERSION_TEXT, "/Device/Model": "Cerbo GX"}
