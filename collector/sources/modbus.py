"""The Modbus-TCP poller: contiguous block reads from the register map, once per grid step.

Every `collector.interval_s` (on the whole second) it reads the planned blocks of each role on its unit
id and hands the decoded values to the sink as Observations. Older firmware serves fewer registers: at the
first poll after every (re)connect each unit's planned blocks are read once, a refused block is bisected
to learn what that unit does not serve (collector.gx.blocks.Gaps, remembered per unit until the next
reconnect) and the blocks are planned around it, reading the older register registers.csv names as
fallback where one exists. A block refused later (firmware changed under us) is learned the same way.
While MQTT is enabled it gives the registers registers.csv marks read=in_block as well: those are read
only inside a block read anyway, never with a request of their own.
A unit answering 0x0A/0x0B is "absent":
one DeviceGone, one log line, then a quiet re-probe every `absent_probe_s` until it answers again
(one "recovered" line). A lost connection is retried with exponential backoff + jitter (cap 30 s).
Read-only by construction: see collector/sources/modbus_client.py.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import replace
from typing import Any

from bess_common.backoff import Backoff
from bess_common.errors import RetryableError
from bess_common.logs import RepeatCounter, get_logger
from collector.config import CollectorSettings, GxSettings
from collector.gx import firmware
from collector.gx.blocks import Block, Gaps, ReadPlan, find_gaps, plan_reads
from collector.gx.decode import BlockRead, Saturated, decode_sources
from collector.observation import DeviceGone, Event, Invalid, Observation, ObservationSink, SourceState
from collector.sources.modbus_client import (
    ILLEGAL_ADDRESS,
    ClientFactory,
    ModbusRefused,
    ReadOnlyModbus,
    UnitAbsent,
    default_client_factory,
)
from collector.sources.modbus_plan import RolePlan, plan_roles
from collector.sources.threaded import ThreadedSource

LEARN_ROUNDS = 8  # replan-and-verify rounds per unit before giving up on a block that keeps refusing


def next_tick(now_s: float, interval_s: float) -> float:
    """The next wall-clock instant on the grid (whole multiples of interval_s), strictly after now."""
    return (math.floor(now_s / interval_s) + 1) * interval_s


class ModbusSource(ThreadedSource):
    """Polls the GX over Modbus-TCP on its own thread; implements collector.observation.Source.

    counters(): polls, reads, probes (requests spent learning gaps), reconnects, device_gone, errors_* and
    garbage_* by kind."""

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
        super().__init__(counts={"polls": 0, "reads": 0, "probes": 0, "reconnects": 0, "device_gone": 0})
        self._gx = gx
        self._interval_s = collector.interval_s
        self._client_factory = client_factory
        self._absent_probe_s = absent_probe_s
        self._backoff = backoff or Backoff(initial_s=1.0, max_s=30.0)
        self._plans = plan_roles(gx)
        self._gaps: dict[int, Gaps] = {}  # unit id -> what it was found not to serve (since the last connect)
        self._logged_gaps: dict[int, Gaps] = {}
        self._probe_due = False
        self._served: dict[tuple[int, int], bool] = {}  # (address, count) -> served, since the last connect
        self._releases: tuple[str, ...] = ()  # the known releases that fit what was served
        self._reads: dict[str, ReadPlan] = {}
        self._replan()
        self._log = get_logger("collector.sources.modbus")
        self._garbage = RepeatCounter(self._log)  # values that are no data (saturated registers)
        self._errors = RepeatCounter(self._log)  # Modbus exceptions other than "absent"
        self._internal = RepeatCounter(self._log)  # bugs / sink failures caught at the loop boundary
        self._repeat_counters.update(garbage=self._garbage, errors=self._errors)
        self._states: dict[str, SourceState] = {p.key: "starting" for p in self._plans}
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
        self._probe_due = True  # what this GX serves is learned again, at the start of the next poll
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

    # --- what each unit serves --------------------------------------------------------------------
    def _replan(self) -> None:
        for plan in self._plans:
            gaps = self._gaps.get(plan.unit, Gaps())
            self._reads[plan.key] = plan_reads(plan.registers, plan.paths, gaps, in_block=plan.in_block)

    def _probe(self) -> None:
        """At the first poll after a (re)connect: forget what was learned (the firmware may have changed),
        read every planned block once, learning the gaps of each unit, then what the GX's release may be.
        Raises RetryableError on a lost connection."""
        self._gaps.clear()
        self._served.clear()
        self._replan()
        for plan in self._plans:
            try:
                self._learn(plan, list(self._reads[plan.key].blocks))
            except UnitAbsent:
                continue  # the poll reports it; its blocks are learned when it answers
            except ModbusRefused as exc:  # another exception: the poll counts it
                self._log.debug("modbus_probe_refused", role=plan.role, unit=plan.unit, code=exc.code)
        self._judge_release()
        self._log_gaps()

    def _judge_release(self) -> None:
        """Which known releases fit what the GX served (one map for all unit ids); registers one of them
        serves with another meaning are not read (collector/gx/firmware.py). None fits: trust registers.csv."""
        self._releases = firmware.consistent_releases(self._served)
        for unit in {p.unit for p in self._plans}:
            regs = [r for p in self._plans if p.unit == unit for r in p.registers]
            known = self._gaps.get(unit, Gaps())
            self._gaps[unit] = replace(known, distrusted=firmware.distrusted(regs, self._releases))
        self._replan()

    def _learn(self, plan: RolePlan, suspects: list[Block]) -> None:
        """Read `suspects`; bisect each refused one; replan; repeat with the blocks of the new plan until
        every block reads. Raises UnitAbsent, ModbusRefused (not 0x02) or RetryableError."""
        verified: set[Block] = set()
        for _ in range(LEARN_ROUNDS):
            new = Gaps()
            for block in suspects:
                if block in verified:
                    continue
                if self._read_ok(plan.unit, block):
                    verified.add(block)
                    continue
                new = new | find_gaps(plan.registers, block, lambda b: self._read_ok(plan.unit, b))
            known = self._gaps.get(plan.unit, Gaps())
            if not new or (new | known) == known:
                return
            self._gaps[plan.unit] = known | new
            self._replan()
            suspects = list(self._reads[plan.key].blocks)

    def _read_ok(self, unit: int, block: Block) -> bool:
        """Whether the unit serves the block (exception 2: no). Counted as a probe."""
        assert self._modbus is not None
        self._bump("probes")
        try:
            self._read(unit, block.address, block.count)
        except ModbusRefused as exc:
            if exc.code == ILLEGAL_ADDRESS:
                self._served[(block.address, block.count)] = False
                return False
            raise
        self._served[(block.address, block.count)] = True
        return True

    def _log_gaps(self) -> None:
        """One line per unit whose gaps differ from those last logged (a reconnect to the same GX is quiet)."""
        for unit in sorted({p.unit for p in self._plans}):
            gaps = self._gaps.get(unit, Gaps())
            if gaps == self._logged_gaps.get(unit, Gaps()):
                continue
            self._logged_gaps[unit] = gaps
            roles = {p.key: self._reads[p.key] for p in self._plans if p.unit == unit}
            self._log.warning(
                "modbus_gaps_learned",
                unit=unit,
                holes=_ranges(gaps.holes),
                seams=sorted(gaps.seams),
                releases=list(self._releases),
                distrusted=_ranges(gaps.distrusted),
                fallbacks={role: [f"{r.path}@{r.address}" for r in rp.fallbacks] for role, rp in roles.items()},
                missing={role: list(rp.missing) for role, rp in roles.items() if rp.missing},
                left_to_mqtt={role: list(rp.skipped) for role, rp in roles.items() if rp.skipped},
                requests_per_poll=sum(len(self._reads[p.key].blocks) for p in self._plans),
            )

    def _disconnected(self, error: str) -> None:
        was_up = self._link_up is not False  # up, or never connected yet: this is a state change
        self._link_up = False
        self._connected = False
        if self._modbus is not None:
            self._modbus.close()
        for plan in self._plans:
            self._set_state(plan.key, "disconnected")
        self._absent_since.clear()
        self._bump("errors_connection")
        if was_up:  # one line per state change; the retries are counted, not logged
            self._log.warning("modbus_disconnected", error=error, host=self._gx.host, port=self._gx.modbus_port)

    def _poll_once(self, sink: ObservationSink) -> None:
        events: list[Event] = []
        self._bump("polls")
        try:
            if self._probe_due:
                self._probe()
                self._probe_due = False
            for plan in self._plans:
                events.extend(self._poll_role(plan))
        except RetryableError as exc:
            self._disconnected(str(exc))
        if events:
            sink(events)

    def _poll_role(self, plan: RolePlan) -> list[Event]:
        assert self._modbus is not None
        now = time.monotonic()
        since = self._absent_since.get(plan.key)
        if since is not None and now - since < self._absent_probe_s:
            return []
        events: list[Event] = []
        for block in self._reads[plan.key].blocks:
            try:
                words = self._read(plan.unit, block.address, block.count)
            except UnitAbsent as exc:
                return self._absent(plan, exc, now)
            except ModbusRefused as exc:
                self._errors.hit(
                    f"exception_{exc.code:#04x}",
                    "modbus_exception",
                    role=plan.key,
                    unit=plan.unit,
                    address=block.address,
                    count=block.count,
                )
                if exc.code == ILLEGAL_ADDRESS:  # the unit stopped serving part of it: learn, read the rest
                    with contextlib.suppress(ModbusRefused, UnitAbsent):  # counted above; absent on the next poll
                        self._learn(plan, [block])
                    self._judge_release()
                    self._log_gaps()
                    break
                continue
            self._bump("reads")
            events.extend(self._observations(plan, BlockRead(block.address, tuple(words)), time.monotonic()))
        self._present(plan)
        return events

    def _absent(self, plan: RolePlan, exc: UnitAbsent, now: float) -> list[Event]:
        first = plan.key not in self._absent_since
        self._absent_since[plan.key] = now
        if not first:
            return []
        self._set_state(plan.key, "absent")
        self._bump("device_gone")
        self._log.warning("modbus_unit_absent", role=plan.key, unit=plan.unit, code=exc.code)
        return [DeviceGone(plan.role, "modbus", now, plan.instance)]

    def _present(self, plan: RolePlan) -> None:
        if self._absent_since.pop(plan.key, None) is not None:
            self._log.info("modbus_unit_recovered", role=plan.key, unit=plan.unit)
        if self._states.get(plan.key) != "connected":
            self._set_state(plan.key, "connected")

    def _observations(self, plan: RolePlan, block: BlockRead, mono_s: float) -> list[Event]:
        out: list[Event] = []
        decoded = decode_sources(self._reads[plan.key].sources, block)
        instance = plan.instance or 0
        for path, value in decoded.items():
            if path not in plan.paths or isinstance(value, str):
                continue
            if value is Saturated.LIMIT:
                self._garbage.hit("out_of_range", "modbus_garbage", role=plan.role, path=path)
                out.append(Observation(plan.role, path, Invalid.NULL, "modbus", mono_s, instance))
            else:
                out.append(Observation(plan.role, path, value, "modbus", mono_s, instance))
        return out

    def describe(self) -> dict[str, Any]:
        """The read plan (as learned for this GX), for logs and `discover`."""
        return {
            p.key: {
                "unit": p.unit,
                "blocks": [(b.address, b.count) for b in self._reads[p.key].blocks],
                "fallbacks": [f"{r.path}@{r.address}" for r in self._reads[p.key].fallbacks],
                "missing": list(self._reads[p.key].missing),
                "left_to_mqtt": list(self._reads[p.key].skipped),
            }
            for p in self._plans
        }


def _ranges(addresses: frozenset[int]) -> list[str]:
    """Addresses as compact ranges, e.g. ["827-839", "847"]."""
    out: list[str] = []
    for a in sorted(addresses):
        if out and int(out[-1].split("-")[-1]) == a - 1:
            out[-1] = f"{out[-1].split('-')[0]}-{a}"
        else:
            out.append(str(a))
    return out
