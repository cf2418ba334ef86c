"""`discover`'s suggested [gx] lines name every inverter/charger, solar charger and meter for Modbus, with the
unit id the GX gives each instance (collector/gx/unitids.csv), and nothing else."""

from __future__ import annotations

from collector.commands.discover import MqttFindings, suggest
from collector.config import GxSettings


def test_the_devices_found_are_suggested_for_modbus_and_the_suggestion_is_a_valid_config() -> None:
    findings = MqttFindings(portal="abc", complete=True)
    for service, instance in (("battery", 0), ("vebus", 276), ("solarcharger", 279), ("grid", 30), ("tank", 20)):
        findings.add(service, instance, "/ProductName", b'{"value": "x"}')
    findings.add("pvinverter", 300, "/ProductName", b'{"value": "x"}')
    lines = suggest(findings)
    line = next(x for x in lines if "modbus_devices" in x)
    assert line.strip() == 'modbus_devices = ["grid/30", "pvinverter/300@UNIT", "solarcharger/279", "vebus/276"]'
    devices = ["grid/30", "solarcharger/279", "vebus/276"]
    assert GxSettings(modbus_devices=devices).modbus_devices == devices


def test_without_devices_no_modbus_devices_line() -> None:
    findings = MqttFindings(portal="abc", complete=True)
    findings.add("battery", 0, "/ProductName", b'{"value": "x"}')
    assert not any("modbus_devices" in x for x in suggest(findings))
