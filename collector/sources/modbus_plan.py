"""The Modbus read plan of every role: which unit id, registers, stored paths and whole blocks
(collector.gx.blocks.plan_reads over the reviewed tables). Pure; collector/sources/modbus.py polls it."""

from __future__ import annotations

from dataclasses import dataclass

from collector.config import GxSettings, parse_device
from collector.gx import tables
from collector.gx.blocks import Block, plan_reads
from collector.observation import Role


@dataclass(frozen=True, slots=True)
class RolePlan:
    """What to read for one role: its unit id, service registers, stored paths, whole blocks."""

    role: Role
    unit: int
    registers: tuple[tables.Register, ...]
    paths: frozenset[str]  # stored (fields.csv, plan.csv) and readable over Modbus
    blocks: tuple[Block, ...]  # the plan when the unit serves everything (current firmware)
    in_block: bool = False  # MQTT gives the same values: read=in_block registers only inside a block
    instance: int | None = None  # the device instance of a multi-instance role (gx.modbus_devices)

    @property
    def key(self) -> str:
        """The role, or "<role>/<instance>" for one device of a multi-instance role (as MQTT names it)."""
        return self.role if self.instance is None else f"{self.role}/{self.instance}"


def plan_roles(gx: GxSettings) -> list[RolePlan]:
    """The read plan of every role that stores something readable over Modbus, then of every device in
    gx.modbus_devices (one plan per instance, on its unit id)."""
    units: list[tuple[Role, int, int | None]] = [
        ("system", gx.system_unit_id, None),
        ("settings", gx.system_unit_id, None),
        ("shunt", gx.shunt_unit_id, None),
        ("bms", gx.bms_unit_id, None),
    ]
    for text in dict.fromkeys(gx.modbus_devices):
        device = parse_device(text)
        units.append((device.service, device.unit, device.instance))  # type: ignore[arg-type]
    plans = []
    for role, unit, instance in units:
        service = tables.ROLE_SERVICE[role]
        by_path = tables.register_by_path(service)
        paths = frozenset(path for path in by_path if tables.stored(role, path))  # fields.csv and plan.csv
        if not paths:
            continue
        registers = tables.registers_for(service)
        blocks = plan_reads(registers, paths, in_block=gx.mqtt_enabled).blocks
        plans.append(RolePlan(role, unit, registers, paths, blocks, gx.mqtt_enabled, instance))
    return plans
