"""`bess-collector discover`: find the portal id, the services, their unit ids and the cell count.

Without --host (and without --config) it first searches the LAN over SSDP the way Venus OS announces itself
(collector/ssdp.py), lists every GX that answered with its portal id, and goes on with the one it found.

Read-only like the collector: MQTT publishes only one full keepalive (through the guarded client),
Modbus sends one FC3 read per probed unit id (through the read-only client).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as mqtt

from bess_common.errors import ConfigError, RetryableError
from collector.config import GxSettings, Settings, load_settings
from collector.gx import tables
from collector.gx.decode import decode_register
from collector.observation import MULTI_ROLES
from collector.sources.modbus_client import ModbusRefused, ReadOnlyModbus, UnitAbsent
from collector.sources.mqtt_client import GuardedMqttClient, default_client_factory
from collector.sources.mqtt_keepalive import new_token
from collector.sources.mqtt_protocol import (
    SERIAL_DISCOVERY_TOPIC,
    decode_json_object,
    echo_of,
    full_keepalive,
    portal_from_serial,
)
from collector.ssdp import SSDP_GROUP, FoundGx, search

HELP = "Connect to a GX (or the simulator) and print its portal id, services, unit ids and cell count"
PROBE_UNITS = (100, 225, 223, 224, 226, 227, 238, 239)


@dataclass(slots=True)
class MqttFindings:
    """What one full publish revealed."""

    portal: str = ""
    services: dict[tuple[str, int], dict[str, object]] = field(default_factory=dict)
    complete: bool = False

    def add(self, service: str, instance: int, path: str, payload: bytes) -> None:
        """Record one N/ message of a service instance."""
        info = self.services.setdefault((service, instance), {"cells": set()})
        cell = _cell_of(path)
        if cell is not None:
            info["cells"].add(cell)  # type: ignore[attr-defined]
        elif path in ("/ProductName", "/CustomName", "/System/NrOfCellsPerBattery"):
            data = decode_json_object(payload)
            if data is not None and data.get("value") is not None:
                info[path] = data["value"]

    def cell_count(self, service: str, instance: int) -> int:
        """Cells seen for a battery (per-cell topics, else /System/NrOfCellsPerBattery)."""
        info = self.services.get((service, instance), {})
        cells = info.get("cells") or set()
        declared = info.get("/System/NrOfCellsPerBattery")
        return len(cells) if cells else (int(declared) if isinstance(declared, int | float) else 0)  # type: ignore[arg-type]


def _cell_of(path: str) -> tuple[int, int] | None:
    """(battery, cell) when `path` is a per-cell voltage of some BMS family (from fields.csv), else None."""
    found = tables.field_for("bms", path)
    if found is None or not found[2] or found[0].field != "voltage_v":
        return None
    return found[1], found[2]


def configure(parser: argparse.ArgumentParser) -> None:
    """Command-line options."""
    parser.add_argument("--config", type=Path, help="config file (its [gx] section is the starting point)")
    parser.add_argument("--host", help="GX address (overrides gx.host)")
    parser.add_argument("--modbus-port", type=int, help="Modbus-TCP port (overrides gx.modbus_port)")
    parser.add_argument("--mqtt-port", type=int, help="MQTT port (overrides gx.mqtt_port)")
    parser.add_argument("--timeout-s", type=float, default=10.0, help="how long to wait for the full publish")
    parser.add_argument(
        "--ssdp-address",
        default=f"{SSDP_GROUP[0]}:{SSDP_GROUP[1]}",
        help="where the search without --host goes (HOST:PORT; default the SSDP multicast group)",
    )
    parser.add_argument("--search-s", type=float, default=3.0, help="how long to wait for SSDP answers")


def _ssdp_target(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError([f"--ssdp-address: expected HOST:PORT, got {text!r}"])
    return host, int(port)


def find_on_lan(args: argparse.Namespace) -> list[FoundGx]:
    """The SSDP search; prints what answered, one line per GX."""
    target = _ssdp_target(args.ssdp_address)
    print(f"Searching for GX devices over SSDP ({target[0]}:{target[1]}, {args.search_s:g} s) ...")
    found = search(target, args.search_s, log=lambda line: print(f"  warning: {line}"))
    for gx in found:
        print(f"  found {gx.address}  portal id {gx.portal_id}  {gx.name} {gx.serial}".rstrip())
    return found


def _gx_settings(args: argparse.Namespace) -> GxSettings:
    settings = load_settings(args.config) if args.config else Settings()
    overrides = {
        k: v
        for k, v in (("host", args.host), ("modbus_port", args.modbus_port), ("mqtt_port", args.mqtt_port))
        if v is not None
    }
    return settings.gx.model_copy(update=overrides) if overrides else settings.gx


def _on_message(findings: MqttFindings, token: str, client: GuardedMqttClient, message: mqtt.MQTTMessage) -> None:
    payload = bytes(message.payload)
    if not findings.portal:
        portal = portal_from_serial(message.topic, payload)
        if portal:
            findings.portal = client.guard_portal = portal
            client.subscribe(f"N/{portal}/#")
            client.publish(f"R/{portal}/keepalive", full_keepalive(token))
        return
    parts = message.topic.split("/")
    if parts[:2] != ["N", findings.portal]:
        return
    if parts[2:] == ["full_publish_completed"]:
        echo = echo_of(payload)
        findings.complete = findings.complete or echo in (token, None)
    elif len(parts) >= 5 and parts[3].isdigit():
        findings.add(parts[2], int(parts[3]), "/" + "/".join(parts[4:]), payload)


def discover_mqtt(gx: GxSettings, timeout_s: float) -> MqttFindings:
    """Portal id and the services of one full publish; raises RetryableError if the broker is unreachable."""
    findings, token = MqttFindings(), new_token()
    client = default_client_factory(gx, f"bess-discover-{token[-6:]}")
    assert isinstance(client, GuardedMqttClient)
    client.on_message = lambda _c, _u, m: _on_message(findings, token, client, m)
    if gx.portal_id:
        client.on_connect = lambda *_: _on_message(findings, token, client, _serial_message(gx.portal_id))
    else:
        client.on_connect = lambda c, *_: c.subscribe(SERIAL_DISCOVERY_TOPIC)
    try:
        client.connect(gx.host, gx.mqtt_port, keepalive=15)
    except (OSError, ValueError) as exc:
        raise RetryableError(f"MQTT {gx.host}:{gx.mqtt_port} unreachable ({exc})") from None
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline and not findings.complete:
            if client.loop(timeout=0.1) != mqtt.MQTT_ERR_SUCCESS:
                raise RetryableError(f"MQTT {gx.host}:{gx.mqtt_port} closed the connection")
        end = time.monotonic() + 0.3  # late stragglers of the full publish
        while time.monotonic() < end:
            client.loop(timeout=0.05)
    finally:
        client.disconnect()
    return findings


def _serial_message(portal: str) -> mqtt.MQTTMessage:
    message = mqtt.MQTTMessage(topic=f"N/{portal}/system/0/Serial".encode())
    message.payload = b'{"value": "%s"}' % portal.encode()
    return message


@dataclass(frozen=True, slots=True)
class Probe:
    """One unit id's answer to one FC3 read."""

    unit: int
    address: int
    answer: str


def probe_units(gx: GxSettings, units: list[int]) -> list[Probe]:
    """One FC3 read per unit id (system voltage on the system unit, battery voltage elsewhere)."""
    modbus = ReadOnlyModbus(gx.host, gx.modbus_port, gx.modbus_timeout_s)
    modbus.connect()  # RetryableError when unreachable
    probes = []
    try:
        for unit in units:
            service = "system" if unit == gx.system_unit_id else "battery"
            reg = tables.register_by_path(service)["/Dc/Battery/Voltage" if service == "system" else "/Dc/0/Voltage"]
            probes.append(Probe(unit, reg.address, _probe_one(modbus, unit, reg, service)))
    finally:
        modbus.close()
    return probes


def _probe_one(modbus: ReadOnlyModbus, unit: int, reg: tables.Register, service: str) -> str:
    try:
        words = modbus.read(unit, reg.address, reg.words)
    except UnitAbsent as exc:
        return f"absent ({exc.code:#04x})"
    except ModbusRefused as exc:  # a GX answers 0x0A (absent) for a unit without this service, never 0x02
        return f"refused (exception {exc.code:#04x})"
    except RetryableError as exc:
        return f"no answer ({exc})"
    value = decode_register(reg, words)
    return f"ok: {service} {value} {reg.unit}".rstrip()


def units_to_probe(gx: GxSettings) -> list[int]:
    """The configured unit ids, then the usual Cerbo ones (bounded, no duplicates)."""
    return list(dict.fromkeys((gx.system_unit_id, gx.shunt_unit_id, gx.bms_unit_id, *PROBE_UNITS)))


def render(gx: GxSettings, findings: MqttFindings | None, probes: list[Probe] | None) -> str:
    """The plain report an operator pastes from."""
    lines = [f"GX {gx.host}"]
    if findings is not None:
        lines += [
            "",
            f"MQTT {gx.mqtt_port}: portal id {findings.portal or '(not found)'}"
            + ("" if findings.complete else "  (full publish did not complete)"),
            f"  {'service':<14}{'instance':>9}  {'unit':>5}  {'cells':>5}  product",
        ]
        for (service, instance), info in sorted(findings.services.items()):
            unit = tables.unit_for_instance(instance)
            cells = findings.cell_count(service, instance) if service == "battery" else 0
            name = info.get("/CustomName") or info.get("/ProductName") or ""
            lines.append(
                f"  {service:<14}{instance:>9}  {unit if unit is not None else '-':>5}  {cells or '-':>5}  {name}"
            )
    if probes is not None:
        lines += ["", f"Modbus-TCP {gx.modbus_port}: one FC3 read per unit id", f"  {'unit':>5}  {'reg':>5}  answer"]
        lines += [f"  {p.unit:>5}  {p.address:>5}  {p.answer}" for p in probes]
    lines += ["", *suggest(findings, gx.host)]
    return "\n".join(line.rstrip() for line in lines)


def suggest(findings: MqttFindings | None, host: str = "") -> list[str]:
    """Suggested [gx] lines: batteries with cells -> bms, the other battery -> shunt; the inverter/chargers,
    solar chargers and meters found, for Modbus (an instance without a unit id on the GX needs @UNIT)."""
    if findings is None or not findings.portal:
        return ["(no suggestion without MQTT)"]
    out = ["Suggested [gx] settings:", *([f'  host = "{host}"'] if host else []), f'  portal_id = "{findings.portal}"']
    batteries = sorted(i for s, i in findings.services if s == "battery")
    bms = [i for i in batteries if findings.cell_count("battery", i)]
    shunt = [i for i in batteries if i not in bms]
    for role, found in (("shunt", shunt), ("bms", bms)):
        if found:
            out.append(f"  {role}_instance = {found[0]}")
            unit = tables.unit_for_instance(found[0])
            if unit is not None:
                out.append(f"  {role}_unit_id = {unit}")
    devices = [f"{s}/{i}" for s, i in sorted(findings.services) if s in MULTI_ROLES]
    if devices:  # MQTT finds these by itself; Modbus reads each on its unit id (collector/gx/unitids.csv)
        listed = ", ".join(
            f'"{d}"' if tables.unit_for_instance(int(d.split("/")[1])) is not None else f'"{d}@UNIT"' for d in devices
        )
        out.append(f"  modbus_devices = [{listed}]")
    return out


def main(args: argparse.Namespace) -> int:
    """Run discovery; 0 when every enabled protocol answered, 1 when the GX cannot be reached."""
    try:
        if args.host is None and args.config is None:
            found = find_on_lan(args)
            if not found:
                print("error: no GX answered the search (is it on this network segment? else give --host)")
                return 1
            if len(found) > 1:
                print("several GX devices answered: run again with --host <address> for one of them")
                return 0
            args.host = found[0].address
        gx = _gx_settings(args)
    except ConfigError as exc:
        print("\n".join(f"config: {p}" for p in exc.problems))
        return 2
    failures: list[str] = []
    findings = probes = None
    if gx.mqtt_enabled:
        try:
            findings = discover_mqtt(gx, args.timeout_s)
        except RetryableError as exc:
            failures.append(f"cannot reach the GX over MQTT: {exc}")
        else:
            if not findings.portal:
                failures.append(
                    f"the broker at {gx.host}:{gx.mqtt_port} answered, but no GX published "
                    f"N/<portal>/system/0/Serial within {args.timeout_s:g} s "
                    "(is MQTT enabled on the GX: Settings → Services → MQTT?)"
                )
    if gx.modbus_enabled:
        try:
            probes = probe_units(gx, units_to_probe(gx))
        except RetryableError as exc:
            failures.append(f"cannot reach the GX over Modbus-TCP at {gx.host}:{gx.modbus_port}: {exc}")
    print(render(gx, findings, probes))
    for line in failures:
        print(f"error: {line}")
    return 1 if failures else 0
