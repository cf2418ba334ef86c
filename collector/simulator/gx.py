"""GxSimulator: physics + truth + Modbus server + MQTT publisher + fault knobs, on background threads."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from collector.gx.firmware import layout
from collector.simulator.bms import DEFAULT_BMS
from collector.simulator.columns import Key, Value
from collector.simulator.faults import Faults
from collector.simulator.modbus_server import ModbusServer
from collector.simulator.mqtt_publisher import MqttPublisher
from collector.simulator.physics import BessPhysics
from collector.simulator.recording import Received, Recorder
from collector.simulator.truth import DEFAULT_PORTAL_ID, Truth

PREFETCH_AHEAD_S = 30.0  # compute the next chunk of the day (truth.chunk_seconds: >= 60 s) this early


class GxSimulator:
    """A simulated Cerbo GX. Either server may be disabled (port None); port 0 picks a free Modbus port.

    `clock` returns UTC unix seconds (default time.time); the published values are those of int(clock()).
    `reconnect_delay_s`: the MQTT client's wait before reconnecting to a lost broker, (min, max) growing
    exponentially, or one fixed delay. `modbus_read_write` is the GX's Settings/ModbusServer/ReadWrite
    (default False = 0, as docs/gx-setup.md recommends: every Modbus write is refused with exception 2).
    `bms` names the BMS family behind the GX (collector/simulator/bms.py: serialbattery, lynx-ng, can, ...).
    `firmware`: a dbus_modbustcp release (collector.gx.firmware) whose register list the Modbus
    server serves; None serves registers.csv (the current release).
    `inverter`: "vebus" (a MultiPlus-II on VE.Bus, vebus/276) or "multi" (a Multi RS on VE.Can, multi/0);
    either way the same physics (collector/simulator/truth.py).
    """

    def __init__(
        self,
        seed: int = 0,
        *,
        modbus_port: int | None = 0,
        mqtt_host: str = "127.0.0.1",
        mqtt_port: int | None = None,
        portal_id: str = DEFAULT_PORTAL_ID,
        cells: int = 16,
        clock: Callable[[], float] = time.time,
        modbus_host: str = "127.0.0.1",
        keepalive_timeout_s: float = 60.0,
        heartbeat_s: float = 3.0,
        reconnect_delay_s: float | tuple[float, float] = (1.0, 2.0),
        modbus_read_write: bool = False,
        bms: str = DEFAULT_BMS,
        firmware: str | None = None,
        inverter: str = "vebus",
    ) -> None:
        self.seed = seed
        self.firmware = firmware
        self._layout = layout(firmware) if firmware is not None else None  # ValueError for an unknown one
        self.portal_id = portal_id
        self.clock = clock
        self.physics = BessPhysics(seed, cells)
        self.bms = bms
        self.inverter = inverter
        self._truth = Truth(self.physics, portal_id, bms=bms, inverter=inverter)  # ValueError for an unknown one
        self.recorder = Recorder()
        self.faults = Faults(self._truth_now)
        self.modbus_port = modbus_port
        self.mqtt_host = mqtt_host
        self.mqtt_port = mqtt_port
        self._modbus: ModbusServer | None = None
        self._mqtt: MqttPublisher | None = None
        self._modbus_host = modbus_host
        self._modbus_read_write = modbus_read_write
        self._keepalive_timeout_s = keepalive_timeout_s
        self._heartbeat_s = heartbeat_s
        self._reconnect_delay_s = reconnect_delay_s
        self._stop = threading.Event()
        self._prefetch: threading.Thread | None = None

    def truth(self, t_s: int) -> dict[Key, Value]:
        """The GX's D-Bus state at UTC second t_s (full precision; None = invalid)."""
        return self._truth.values_at(t_s)

    def _truth_now(self) -> dict[Key, Value]:
        return self._truth.shared_values_at(int(self.clock()))  # read-only: one dict per second for every reader

    def current_values(self) -> dict[Key, Value]:
        """What the GX serves right now: the frozen snapshot while frozen, else truth(now) with the fault
        knobs' overlay (pinned values) on top (read-only: shared between readers)."""
        frozen = self.faults.frozen_values()
        if frozen is not None:
            return frozen
        values = self._truth_now()
        overlay = self.faults.overlay()
        return {**values, **overlay} if overlay else values

    @property
    def received(self) -> list[Received]:
        """Every Modbus request and R/ or W/ MQTT message received so far (a copy)."""
        return self.recorder.snapshot()

    def start(self) -> GxSimulator:
        """Start the enabled servers (returns once they accept requests / are connected)."""
        self._truth_now()  # compute today's arrays before serving
        try:
            if self.modbus_port is not None:
                self._modbus = ModbusServer(
                    self._modbus_host,
                    self.modbus_port,
                    self.faults,
                    self.current_values,
                    self.recorder,
                    read_write=self._modbus_read_write,
                    layout=self._layout,
                    inverter=self.inverter,
                )
                self.modbus_port = self._modbus.port
                self._modbus.start()
            if self.mqtt_port is not None:
                self._mqtt = MqttPublisher(
                    self.mqtt_host,
                    self.mqtt_port,
                    self.portal_id,
                    faults=self.faults,
                    values=self.current_values,
                    recorder=self.recorder,
                    clock=self.clock,
                    seed=self.seed,
                    keepalive_timeout_s=self._keepalive_timeout_s,
                    heartbeat_s=self._heartbeat_s,
                    reconnect_delay_s=self._reconnect_delay_s,
                )
                self.faults.mqtt = self._mqtt
                self._mqtt.start()
        except BaseException:
            self.stop()
            raise
        self._stop.clear()
        self._prefetch = threading.Thread(target=self._prefetch_days, name="sim-prefetch", daemon=True)
        self._prefetch.start()
        return self

    def _prefetch_days(self) -> None:
        """Compute the next chunk of the day (the next day before midnight) so serving never stalls on it."""
        while not self._stop.wait(5.0):
            self._truth.prefetch(int(self.clock() + PREFETCH_AHEAD_S))

    def stop(self) -> None:
        """Stop both servers and free the port; idempotent."""
        self._stop.set()
        if self._prefetch is not None:
            self._prefetch.join(5.0)
            self._prefetch = None
        if self._mqtt is not None:
            self._mqtt.stop()
            self.faults.mqtt = None
            self._mqtt = None
        if self._modbus is not None:
            self._modbus.stop()
            self._modbus = None

    def __enter__(self) -> GxSimulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
