"""The Modbus-TCP poller: contiguous block reads from the register map, once per grid step.

Every `collector.interval_s` (on the whole second) it reads the planned blocks of each role on its unit
id and hands the decoded values to the sink as Observations. A unit answering 0x0A/0x0B is "absent":
one DeviceGone, one log line, then a quiet re-probe every `absent_probe_s` until it answers again
(one "recovered" line). A lost connection is retried with exponential backoff + jitter (cap 30 s).
Read-only by construction: see collector/sources/modbus_client.py.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

from bess_common.errors import RetryableError
from bess_common.logs import RepeatCounter, get_logger
from collector.config import CollectorSettings, GxSettings
from collector.gx import tables
from collector.gx.blocks import Block, plan_blocks
from collector.gx.decode import BlockRead, Saturated, decode_block
from collector.observation import DeviceGone, Event, Invalid, Observation, ObservationSink, Role, SourceState
from collector.sources.backoff import Backoff
from collector.sources.modbus_client import (
    ILLEGAL_ADDRESS,
    ClientFactory,
    ModbusRefused,
    ReadOnlyModbus,
    UnitAbsent,
    default_client_factory,
)
from collector.sources.threaded import ThreadedSource


@dataclass(frozen=True, slots=True)
class RolePlan:
    """What to read for one role: its unit id, service registers, wanted paths and blocks."""

    role: Role
    unit: int
    registers: tuple[tables.Register, ...]
    paths: frozenset[str]
    blocks: tuple[Block, ...]


SPLIT_RETRY_S = 60.0  # a refused block whose registers all refuse too: try splitting again after this
REPLAN_AFTER_S = 600.0  # split blocks go back to whole blocks after this (the firmware may have changed)


def plan_roles(gx: GxSettings) -> list[RolePlan]:
    """The read plan of every role that stores something readable over Modbus."""
    units: dict[Role, int] = {
        "system": gx.system_unit_id,
        "settings": gx.system_unit_id,
        "shunt": gx.shunt_unit_id,
        "bms": gx.bms_unit_id,
    }
    plans = []
    for role, unit in units.items():
        service = tables.ROLE_SERVICE[role]
        by_path = tables.register_by_path(service)
        paths = frozenset(s.path for s in tables.fields() if s.role == role and s.path in by_path)
        registers = tables.registers_for(service)
        blocks = plan_blocks(registers, paths)
        if blocks:
            plans.append(RolePlan(role, unit, registers, paths, tuple(blocks)))
    return plans


def next_tick(now_s: float, interval_s: float) -> float:
    """The next wall-clock instant on the grid (whole multiples of interval_s), strictly after now."""
    return (math.floor(now_s / interval_s) + 1) * interval_s


class ModbusSource(ThreadedSource):
    """Polls the GX over Modbus-TCP on its own thread; implements collector.observation.Source.

    counters(): polls, reads, reconnects, device_gone, errors_* and garbage_* by kind."""

    name = "modbus"
    thread_name = "modbus-poller"

    def __init__(
        self,
        gx: GxSettings,
        collector: CollectorSettings,
        client_factory: ClientFactory = default_client_factory,
        absent_probe_s: float = 10.0,
        backoff: Backoff | None = None,
    ) -> None:
        super().__init__(counts={"polls": 0, "reads": 0, "reconnects": 0, "device_gone": 0})
        self._gx = gx
        self._interval_s = collector.interval_s
        self._client_factory = client_factory
        self._absent_probe_s = absent_probe_s
        self._backoff = backoff or Backoff(initial_s=1.0, max_s=30.0)
        self._plans = plan_roles(gx)
        self._blocks: dict[str, list[Block]] = {p.role: list(p.blocks) for p in self._plans}
        self._split_at: dict[str, float] = {}  # role -> when its blocks were first split
        self._split_retry_at: dict[tuple[str, int], float] = {}
        self._log = get_logger("collector.sources.modbus")
        self._garbage = RepeatCounter(self._log)  # values that are no data (saturated registers)
        self._errors = RepeatCounter(self._log)  # Modbus exceptions other than "absent"
        self._internal = RepeatCounter(self._log)  # bugs / sink failures caught at the loop boundary
        self._repeat_counters.update(garbage=self._garbage, errors=self._errors)
        self._states: dict[str, SourceState] = {p.role: "starting" for p in self._plans}
        self._absent_since: dict[str, float] = {}
        self._modbus: ReadOnlyModbus | None = None
        self._connected = False
        self._link_up: bool | None = None  # None until the first connect attempt resolves

    # --- Source protocol (start, stop, counters, loop_age_s: ThreadedSource) ---------------------
    def state(self) -> dict[str, SourceState]:
        """Per-role state: starting, connected, disconnected or absent."""
        with self._lock:
            return dict(self._states)

    # --- loop ------------------------------------------------------------------------------------
    def _set_state(self, role: str, state: SourceState) -> None:
        with self._lock:
            self._states[role] = state

    def _run(self, sink: ObservationSink) -> None:
        try:
            while not self._stop.is_set():
                self._beat()
                if not self._connected and not self._connect():
                    self._stop.wait(self._backoff.next_delay())
                    continue
                self._stop.wait(max(0.0, next_tick(time.time(), self._interval_s) - time.time()))
                if self._stop.is_set():
                    break
                try:
                    self._poll_once(sink)
                except Exception as exc:  # loop boundary: a bug or a failing sink must not end the poller
                    self._bump("errors_internal")
                    self._internal.hit(type(exc).__name__, "modbus_internal_error", error=repr(exc), exc_info=True)
        finally:
            if self._modbus is not None:
                self._modbus.close()

    def _connect(self) -> bool:
        if self._modbus is None:
            self._modbus = ReadOnlyModbus(
                self._gx.host, self._gx.modbus_port, self._gx.modbus_timeout_s, self._client_factory
            )
        try:
            self._modbus.connect()
        except RetryableError as exc:
            self._disconnected(str(exc))
            return False
        self._connected = True  # the TCP connection; "up" only once the server answers (_answered)
        self._bump("reconnects")
        return True

    def _read(self, unit: int, address: int, count: int) -> list[int]:
        """One read; any answer of the server (values or a Modbus exception) marks the link up."""
        assert self._modbus is not None
        try:
            words = self._modbus.read(unit, address, count)
        except (UnitAbsent, ModbusRefused):
            self._answered()
            raise
        self._answered()
        return words

    def _answered(self) -> None:
        """The server answered a poll (values or Modbus exceptions): the link is up. A GX that accepts the
        TCP connection but answers nothing (hung) stays disconnected, with the backoff growing."""
        if self._link_up is not True:
            self._link_up = True
            self._backoff.reset()
            self._log.info("modbus_connected", host=self._gx.host, port=self._gx.modbus_port)

    def _disconnected(self, error: str) -> None:
        was_up = self._link_up is not False  # up, or never connected yet: this is a state change
        self._link_up = False
        self._connected = False
        if self._modbus is not None:
            self._modbus.close()
        for plan in self._plans:
            self._set_state(plan.role, "disconnected")
        self._absent_since.clear()
        self._bump("errors_connection")
        if was_up:  # one line per state change; the retries are counted, not logged
            self._log.warning("modbus_disconnected", error=error, host=self._gx.host, port=self._gx.modbus_port)

    def _poll_once(self, sink: ObservationSink) -> None:
        events: list[Event] = []
        self._bump("polls")
        try:
            for plan in self._plans:
                events.extend(self._poll_role(plan))
        except RetryableError as exc:
            self._disconnected(str(exc))
        if events:
            sink(events)

    def _poll_role(self, plan: RolePlan) -> list[Event]:
        assert self._modbus is not None
        now = time.monotonic()
        since = self._absent_since.get(plan.role)
        if since is not None and now - since < self._absent_probe_s:
            return []
        if now - self._split_at.get(plan.role, now) > REPLAN_AFTER_S:
            self._blocks[plan.role] = list(plan.blocks)  # firmware may have been updated: try whole blocks
            del self._split_at[plan.role]
        events: list[Event] = []
        for block in list(self._blocks[plan.role]):
            try:
                words = self._read(plan.unit, block.address, block.count)
            except UnitAbsent as exc:
                return self._absent(plan, exc, now)
            except ModbusRefused as exc:
                self._errors.hit(
                    f"exception_{exc.code:#04x}",
                    "modbus_exception",
                    role=plan.role,
                    unit=plan.unit,
                    address=block.address,
                    count=block.count,
                )
                if exc.code == ILLEGAL_ADDRESS and block.count > 1:
                    events.extend(self._try_split(plan, block, now))
                continue
            self._bump("reads")
            events.extend(self._observations(plan, BlockRead(block.address, tuple(words)), time.monotonic()))
        self._present(plan)
        return events

    def _try_split(self, plan: RolePlan, block: Block, now: float) -> list[Event]:
        """A block refused with 0x02 (older firmware lacks a register in it): read only the wanted registers
        one by one. If some answer, keep reading that way (one missing register no longer hides the rest);
        if none does, the unit refuses everything: keep the block and try again in a minute."""
        assert self._modbus is not None
        if now < self._split_retry_at.get((plan.role, block.address), 0.0):
            return []
        smaller = [
            Block(r.address, r.words)
            for r in plan.registers
            if block.address <= r.address
            and r.end <= block.end
            and r.dbus_path
            and "#" not in r.dbus_path
            and r.path in plan.paths
        ]
        events: list[Event] = []
        answered = 0
        kept: list[Block] = []
        for part in smaller:
            # the register itself, else its older copy ('#' row of the same path, e.g. the 16-bit power
            # registers where the firmware predates the 32-bit ones)
            for candidate in (part, *self._copies(plan, part.address)):
                try:
                    words = self._read(plan.unit, candidate.address, candidate.count)
                except (ModbusRefused, UnitAbsent):
                    continue
                answered += 1
                kept.append(candidate)
                events.extend(self._observations(plan, BlockRead(candidate.address, tuple(words)), time.monotonic()))
                break
            else:
                kept.append(part)
        if not answered:
            self._split_retry_at[(plan.role, block.address)] = now + SPLIT_RETRY_S
            return []
        blocks = self._blocks[plan.role]
        index = blocks.index(block)
        self._blocks[plan.role] = [*blocks[:index], *kept, *blocks[index + 1 :]]
        self._split_at.setdefault(plan.role, now)
        self._log.warning(
            "modbus_block_split",
            role=plan.role,
            unit=plan.unit,
            address=block.address,
            count=block.count,
            reads=len(smaller),
            answered=answered,
        )
        return events

    @staticmethod
    def _copies(plan: RolePlan, address: int) -> list[Block]:
        """Single reads of the '#' copies of the path whose plain register starts at `address`."""
        path = next((r.path for r in plan.registers if r.address == address), None)
        return [Block(r.address, r.words) for r in plan.registers if "#" in r.dbus_path and r.path == path and path]

    def _absent(self, plan: RolePlan, exc: UnitAbsent, now: float) -> list[Event]:
        first = plan.role not in self._absent_since
        self._absent_since[plan.role] = now
        if not first:
            return []
        self._set_state(plan.role, "absent")
        self._bump("device_gone")
        self._log.warning("modbus_unit_absent", role=plan.role, unit=plan.unit, code=exc.code)
        return [DeviceGone(plan.role, "modbus", now)]

    def _present(self, plan: RolePlan) -> None:
        if self._absent_since.pop(plan.role, None) is not None:
            self._log.info("modbus_unit_recovered", role=plan.role, unit=plan.unit)
        if self._states.get(plan.role) != "connected":
            self._set_state(plan.role, "connected")

    def _observations(self, plan: RolePlan, block: BlockRead, mono_s: float) -> list[Event]:
        out: list[Event] = []
        decoded = decode_block(plan.registers, block)
        for path, value in decoded.items():
            if path not in plan.paths or isinstance(value, str):
                continue
            if value is Saturated.LIMIT:
                self._garbage.hit("out_of_range", "modbus_garbage", role=plan.role, path=path)
                out.append(Observation(plan.role, path, Invalid.NULL, "modbus", mono_s))
            else:
                out.append(Observation(plan.role, path, value, "modbus", mono_s))
        return out

    def describe(self) -> dict[str, Any]:
        """The read plan, for logs and `discover`."""
        return {p.role: {"unit": p.unit, "blocks": [(b.address, b.count) for b in p.blocks]} for p in self._plans}
