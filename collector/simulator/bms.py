"""The BMS families the simulator can put behind the GX (`--bms`), as each really publishes its cells.

One profile = one row of BMS_PROFILES: which D-Bus paths carry per-cell data, which carry sensor
temperatures, and how the service names itself. Sources (public repositories, by file and commit):
- dbus-serialbattery: mr-manuel/venus-os_dbus-serialbattery @358d3c7, dbus-serialbattery/dbushelper.py
  (cell paths chosen by BATTERY_CELL_DATA_FORMAT: bit 2 -> /Cell/<n>/Volts else /Voltages/Cell<n>, bit 1 ->
  /Balances/Cell<n>; /System/Temperature1..4 and /System/MOSTemperature; no per-cell temperature),
  config.default.ini (the default format is 1).
- Lynx Smart BMS NG: closed source (vecan-dbus); victronenergy/gui-v2 @2ffcc3c shows its paths:
  pages/settings/devicelist/battery/PageLynxIonBatteryInfo.qml reads /Battery/<Request/Id>/Cell/<n>/Voltage
  and /Temperature after the user picks a battery (a write to /Battery/Request/Id); the gui's mock of the
  service, data/mock/conf/services/lynxbms.json, has cell voltages for every battery and cell temperatures
  only for the requested one. The simulator does the same, with /Battery/Request/Id = 1.
- CAN-bus BMS (Pylontech, BYD, ...): the GX's CAN driver gives min/max cell voltage and temperature and
  their cell ids, no per-cell path.
"""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True, slots=True)
class BmsProfile:
    """What one BMS family publishes on D-Bus beyond the common battery paths."""

    name: str
    product_id: int
    product_name: str
    connection: str
    cell_voltage: str | None  # per-cell voltage path ('{n}' cell, '{b}' battery); None: min/max only
    cell_balances: bool  # /Balances/Cell<n> (0/1)
    cell_summary: str | None  # '/Voltages' or '/Cell': <base>/Sum and <base>/Diff
    sensors: bool  # /System/Temperature1..4 (+ Name) and /System/MOSTemperature
    cell_temperature: str | None  # per-cell temperature path of the requested battery (Lynx Smart BMS NG)
    batteries: int  # batteries in series inside the BMS (the Lynx Smart BMS NG's /Battery/<b>/...)
    extra_alarms: tuple[str, ...]  # /Alarms/<name> beyond the common set
    smartlithium_errors: bool  # /Errors/SmartLithium/* (Victron's Lynx Smart BMS)
    firmware_version: int | str  # /FirmwareVersion as the driver publishes it
    serial: str | None  # /Serial


SERIALBATTERY_ID = 0xBA77  # dbushelper.py: add_path("/ProductId", 0xBA77)
SERIALBATTERY_VERSION = "2.1.20260729dev"  # dbushelper.py publishes str(utils.DRIVER_VERSION)
SERIALBATTERY = BmsProfile(
    "serialbattery",  # BATTERY_CELL_DATA_FORMAT = 1, the default
    product_id=SERIALBATTERY_ID,
    product_name="SerialBattery JK-BMS-1 @ ttyUSB0 (Jkbms)",  # battery.py product_name()
    connection="Serial /dev/ttyUSB0",
    cell_voltage="/Voltages/Cell{n}",
    cell_balances=True,
    cell_summary="/Voltages",
    sensors=True,
    cell_temperature=None,
    batteries=1,
    extra_alarms=("HighCellVoltage", "BmsCable", "FuseBlown", "HighInternalTemperature"),
    smartlithium_errors=False,
    firmware_version=SERIALBATTERY_VERSION,
    serial="JK-BMS-1",
)

BMS_PROFILES: dict[str, BmsProfile] = {
    "serialbattery": SERIALBATTERY,
    "serialbattery-format2": replace(
        SERIALBATTERY,
        name="serialbattery-format2",
        cell_voltage="/Cell/{n}/Volts",
        cell_balances=False,
        cell_summary="/Cell",
    ),
    "serialbattery-format3": replace(
        SERIALBATTERY, name="serialbattery-format3", cell_voltage="/Cell/{n}/Volts", cell_summary="/Cell"
    ),
    "lynx-ng": BmsProfile(
        "lynx-ng",
        product_id=0xA3E7,  # gui-v2's mock of the service: "/ProductId": 41959
        product_name="Lynx Smart BMS NG",
        connection="VE.Can",
        cell_voltage="/Battery/{b}/Cell/{n}/Voltage",
        cell_balances=False,
        cell_summary=None,
        sensors=False,
        cell_temperature="/Battery/{b}/Cell/{n}/Temperature",
        batteries=4,
        extra_alarms=("BmsCable", "Contactor", "HighCurrent", "HighInternalTemperature"),
        smartlithium_errors=True,
        firmware_version=0x113FF,
        serial="HQ2412ABCDE",
    ),
    "can": BmsProfile(
        "can",
        product_id=0xB004,
        product_name="Pylontech battery",
        connection="VE.Can",
        cell_voltage=None,
        cell_balances=False,
        cell_summary=None,
        sensors=False,
        cell_temperature=None,
        batteries=1,
        extra_alarms=(),
        smartlithium_errors=False,
        firmware_version=0x0101,
        serial=None,
    ),
}
DEFAULT_BMS = "serialbattery"
REQUESTED_BATTERY = 1  # /Battery/Request/Id as gui-v2's mock has it (a read-only client cannot change it)
SMARTLITHIUM_ERRORS = ("Communication", "Voltage", "NrOfBatteries", "InvalidConfiguration")


def bms_profile(name: str) -> BmsProfile:
    """The profile called `name`; ValueError listing the known ones otherwise."""
    try:
        return BMS_PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown BMS profile {name!r}; one of {', '.join(BMS_PROFILES)}") from None
