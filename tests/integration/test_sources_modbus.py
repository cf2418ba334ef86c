"""The Modbus poller and the read-only client against a real Modbus-TCP server on a socket.

`GxModbusServer` is a minimal Modbus-TCP server that follows the GX's rules (FC3/FC4 only, exception 2
on unmapped addresses, 3 above 125 registers, 0x0A for an absent unit) and records every frame it
receives, so a test can prove that nothing but reads ever reached it.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Iterator

import pytest
import structlog
from pymodbus.pdu.register_message import WriteSingleRegisterRequest

from collector.config import CollectorSettings, GxSettings
from collector.gx import tables
from collector.observation import DeviceGone, Event, Observation
from collector.sources.modbus import ModbusSource
from collector.sources.modbus_client import ReadOnlyModbus, ReadOnlyTcpClient, WriteRefused
from deploy.localservices import free_port
from tests.integration.sourcewait import Collected, StartStop, started
from tests.waiting import wait_until

pytestmark = pytest.mark.integration


class GxModbusServer(StartStop):
    """A Modbus-TCP server with per-unit register images; records every received frame."""

    def __init__(self, units: dict[int, dict[int, int]], port: int | None = None) -> None:
        self.units = units
        self.absent: set[int] = set()
        self.refusing: set[int] = set()  # units answering exception 2 to everything
        self.port = port or free_port()
        self.received: list[bytes] = []
        self._sock: socket.socket | None = None
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()
        self._conns: list[socket.socket] = []

    def start(self) -> None:
        self._stop.clear()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", self.port))
        self._sock.listen(8)
        self._sock.settimeout(0.1)
        thread = threading.Thread(target=self._accept, daemon=True)
        thread.start()
        self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        for conn in self._conns:
            conn.close()
        self._conns.clear()
        if self._sock is not None:
            self._sock.close()
        for thread in self._threads:
            thread.join(2)
        self._threads.clear()

    def _accept(self) -> None:
        assert self._sock is not None
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except (TimeoutError, OSError):
                continue
            self._conns.append(conn)
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(0.1)
        buf = b""
        while not self._stop.is_set():
            try:
                data = conn.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            if not data:
                return
            buf += data
            while len(buf) >= 6 and len(buf) >= 6 + struct.unpack(">H", buf[4:6])[0]:
                size = 6 + struct.unpack(">H", buf[4:6])[0]
                frame, buf = buf[:size], buf[size:]
                self.received.append(frame)
                try:
                    conn.sendall(self._answer(frame))
                except OSError:
                    return

    def _answer(self, frame: bytes) -> bytes:
        tid, _pid, _len, unit, fc = struct.unpack(">HHHBB", frame[:8])

        def reply(pdu: bytes) -> bytes:
            return struct.pack(">HHHB", tid, 0, len(pdu) + 1, unit) + pdu

        def exception(code: int) -> bytes:
            return reply(bytes([fc | 0x80, code]))

        if fc not in (3, 4):
            return exception(0x01)
        if unit in self.absent or unit not in self.units:
            return exception(0x0A)
        if unit in self.refusing:
            return exception(0x02)
        address, count = struct.unpack(">HH", frame[8:12])
        if not 1 <= count <= 125:
            return exception(0x03)
        image = self.units[unit]
        if any(a not in image for a in range(address, address + count)):
            return exception(0x02)
        words = [image[a] for a in range(address, address + count)]
        return reply(bytes([fc, 2 * count]) + struct.pack(f">{count}H", *words))


def image(services: tuple[str, ...], values: dict[tuple[str, int], list[int]]) -> dict[int, int]:
    """A register image holding every mapped address of the services (reserved = 0xFFFF, others 0)."""
    out: dict[int, int] = {}
    for service in services:
        for reg in tables.registers_for(service):
            words = values.get((service, reg.address), [0xFFFF if reg.type == "reserved" else 0] * reg.words)
            for i, word in enumerate(words):
                out[reg.address + i] = word
    return out


VALUES = {
    ("battery", 259): [5327],  # shunt 53.27 V
    ("battery", 261): [0x10000 - 125],  # -12.5 A
    ("battery", 266): [805],  # 80.5 %
    ("battery", 1289): [16],  # 16 cells
    ("system", 840): [532],
    ("system", 842): [0x10000 - 650],
    ("system", 843): [0xFFFF],  # saturated: garbage, never written as data
    ("settings", 2900): [10],
}


def gx_units(bms_image: dict[int, int] | None = None) -> dict[int, dict[int, int]]:
    """The GX's unit ids with VALUES: 100 (system, settings, shunt) and 225 (the BMS, or `bms_image`)."""
    return {
        100: image(("system", "settings", "battery"), VALUES),
        225: image(("battery",), VALUES) if bms_image is None else bms_image,
    }


@pytest.fixture
def gx_server() -> Iterator[GxModbusServer]:
    with GxModbusServer(gx_units()) as server:
        yield server


def values_of(events: list[Event], role: str) -> dict[str, object]:
    return {e.path: e.value for e in events if isinstance(e, Observation) and e.role == role}


def all_roles_read(events: list[Event]) -> bool:
    """True once the BMS voltage and a setting have arrived (the shunt and system come first)."""
    return "/Dc/0/Voltage" in values_of(events, "bms") and bool(values_of(events, "settings"))


def shunt_read(events: list[Event]) -> bool:
    """True once a shunt value has arrived."""
    return bool(values_of(events, "shunt"))


def bms_gone(events: list[Event]) -> bool:
    """True once the BMS was reported gone."""
    return any(isinstance(e, DeviceGone) and e.role == "bms" for e in events)


def cells_read(events: list[Event]) -> bool:
    """True once the BMS cell count has arrived."""
    return "/System/NrOfCellsPerBattery" in values_of(events, "bms")


def many_shunt_reads(events: list[Event]) -> bool:
    """True after more than 40 shunt values (several polls)."""
    return len([e for e in events if isinstance(e, Observation) and e.role == "shunt"]) > 40


def settings(server: GxModbusServer) -> tuple[GxSettings, CollectorSettings]:
    gx = GxSettings(host="127.0.0.1", modbus_port=server.port, modbus_timeout_s=1.0)
    return gx, CollectorSettings(interval_s=0.2)


def test_when_polled_then_block_values_arrive_decoded_and_only_reads_were_sent(gx_server: GxModbusServer) -> None:
    source = ModbusSource(*settings(gx_server))
    with started(source, until=all_roles_read) as (_, events):
        shunt = values_of(events, "shunt")
        assert shunt["/Dc/0/Voltage"] == pytest.approx(53.27)
        assert shunt["/Dc/0/Current"] == pytest.approx(-12.5)
        assert shunt["/Soc"] == pytest.approx(80.5)
        assert values_of(events, "bms")["/System/NrOfCellsPerBattery"] == 16
        system = values_of(events, "system")
        assert system["/Dc/Battery/Voltage"] == pytest.approx(53.2)
        assert system["/Dc/Battery/Power"] == -650
        assert str(system["/Dc/Battery/Soc"]) == "Invalid.NULL"  # 0xFFFF: saturated, not data
        assert values_of(events, "settings")["/Settings/CGwacs/BatteryLife/State"] == 10
        assert gx_server.received and {frame[7] for frame in gx_server.received} == {3}
        assert source.state() == {
            "system": "connected",
            "settings": "connected",
            "shunt": "connected",
            "bms": "connected",
        }
        assert source.counters()["garbage_out_of_range"] >= 1


def test_when_a_write_is_attempted_by_any_route_then_refused_and_the_server_sees_nothing(
    gx_server: GxModbusServer,
) -> None:
    client = ReadOnlyTcpClient("127.0.0.1", port=gx_server.port, timeout=1.0, retries=0)
    assert client.connect()
    try:
        with pytest.raises(WriteRefused):
            client.write_register(2901, 100, device_id=100)
        with pytest.raises(WriteRefused):
            client.write_registers(2901, [100], device_id=100)
        with pytest.raises(WriteRefused):
            client.write_coil(0, True, device_id=100)
        with pytest.raises(WriteRefused):  # below execute(): the raw frame at the socket
            client.send(struct.pack(">HHHBBHH", 1, 0, 6, 100, 6, 2901, 100))
        with pytest.raises(WriteRefused):  # a PDU smuggled past execute() into the transaction layer
            client.transaction.sync_execute(
                False, WriteSingleRegisterRequest(address=2901, registers=[100], dev_id=100)
            )
        time.sleep(0.3)
        assert gx_server.received == []
        # the same connection still reads
        assert client.read_holding_registers(2900, count=1, device_id=100).registers == [10]
        assert [frame[7] for frame in gx_server.received] == [3]
    finally:
        client.close()


def test_when_factory_returns_an_unguarded_client_then_refused() -> None:
    from pymodbus.client import ModbusTcpClient

    with pytest.raises(WriteRefused):
        ReadOnlyModbus("127.0.0.1", 1, 1.0, client_factory=lambda h, p, t: ModbusTcpClient(h, port=p))


def test_when_unit_absent_then_device_gone_once_and_recovery_when_it_returns(gx_server: GxModbusServer) -> None:
    gx_server.absent.add(225)
    source = ModbusSource(*settings(gx_server), absent_probe_s=0.3)
    with structlog.testing.capture_logs() as logs, started(source, until=bms_gone) as (sink, _):
        probes = source.counters()["polls"]
        wait_until(lambda: source.counters()["polls"] >= probes + 3, 5, "three polls (and probes) while absent")
        assert source.state()["bms"] == "absent"
        assert source.state()["shunt"] == "connected"
        gone = [e for e in sink.snapshot() if isinstance(e, DeviceGone)]
        assert len(gone) == 1
        gx_server.absent.clear()
        sink.wait_for(lambda ev: "/Dc/0/Voltage" in values_of(ev, "bms"))
        assert source.state()["bms"] == "connected"
    loud = [e["event"] for e in logs if e["log_level"] != "debug"]
    # the saturated system SoC register of VALUES is logged once as garbage, then only counted
    assert loud == ["modbus_connected", "modbus_garbage", "modbus_unit_absent", "modbus_unit_recovered"]


def test_when_server_restarts_then_poller_reconnects(gx_server: GxModbusServer) -> None:
    source = ModbusSource(*settings(gx_server))
    with started(source, until=shunt_read) as (sink, _):
        with structlog.testing.capture_logs() as logs:
            gx_server.stop()
            wait_until(lambda: source.state()["shunt"] == "disconnected", 5, "the poller to see the disconnect")
            wait_until(lambda: source.counters()["errors_connection"] >= 3, 15, "several failed reconnect attempts")
            gx_server.start()
            sink.clear()
            sink.wait_for(shunt_read, timeout_s=10)
        assert source.counters()["reconnects"] >= 2
        assert source.counters()["errors_connection"] >= 3
        assert [e["event"] for e in logs if e["log_level"] != "debug"] == ["modbus_disconnected", "modbus_connected"]


def test_when_older_firmware_lacks_a_register_then_the_gap_is_learned_once_and_blocks_avoid_it() -> None:
    bms_image = image(("battery",), VALUES)
    del bms_image[1297]  # /Io/AllowToCharge not mapped: a read across it fails with exception 2
    server = GxModbusServer(gx_units(bms_image))
    source = ModbusSource(*settings(server))
    with server, structlog.testing.capture_logs() as logs, started(source, until=cells_read) as (sink, _):
        sink.wait_for(lambda ev: len([e for e in ev if isinstance(e, Observation) and e.role == "bms"]) > 60)
        events = sink.snapshot()
        assert "/Io/AllowToCharge" not in values_of(events, "bms")
        assert "/Io/AllowToDischarge" in values_of(events, "bms")
        assert "errors_exception_0x02" not in source.counters()  # learned at connect: no refused poll
        assert source.state()["bms"] == "connected"
        blocks = source.describe()["bms"]["blocks"]
        assert all(not a <= 1297 < a + n for a, n in blocks)
        assert source.describe()["bms"]["missing"] == ["/Io/AllowToCharge"]
    learned = [e for e in logs if e["event"] == "modbus_gaps_learned"]
    assert len(learned) == 1 and learned[0]["holes"] == ["1297"] and learned[0]["unit"] == 225


def test_when_the_gx_comes_back_with_newer_firmware_then_the_gaps_are_learned_again() -> None:
    bms_image = image(("battery",), VALUES)
    del bms_image[1297]
    server = GxModbusServer(gx_units(bms_image))
    source = ModbusSource(*settings(server))
    with server, started(source, until=cells_read) as (sink, _):
        assert source.describe()["bms"]["missing"] == ["/Io/AllowToCharge"]
        server.stop()  # the GX reboots into a release that serves 1297
        wait_until(lambda: source.state()["bms"] == "disconnected", what="the poller saw the GX go")
        server.units = gx_units()
        server.start()
        sink.clear()
        sink.wait_for(lambda ev: "/Io/AllowToCharge" in values_of(ev, "bms"), timeout_s=10)
        assert source.describe()["bms"]["missing"] == []
        assert source.counters()["reconnects"] >= 2


def test_when_the_sink_fails_once_then_the_poller_keeps_going(gx_server: GxModbusServer) -> None:
    source = ModbusSource(*settings(gx_server))
    with started(source, until=shunt_read, sink=Collected(fail_first=1)):
        assert source.counters()["errors_internal"] == 1


def test_when_a_unit_refuses_every_address_then_it_is_learned_once_and_not_asked_again() -> None:
    server = GxModbusServer(gx_units())
    server.refusing.add(225)
    source = ModbusSource(*settings(server))
    with server, started(source, until=many_shunt_reads) as (sink, _):
        start, polls = len(server.received), source.counters()["polls"]
        wait_until(lambda: source.counters()["polls"] >= polls + 5, 5, "five more polls")
        to_bms = [f for f in server.received[start:] if f[6] == 225]
        assert to_bms == []  # every register is a hole: nothing left to ask until the next reconnect
        assert not values_of(sink.snapshot(), "bms")
        assert source.counters()["probes"] >= 10  # the one bisection at connect
        assert "/Dc/0/Voltage" in source.describe()["bms"]["missing"]


# --- the 32-bit system power registers (884-918, dbus_modbustcp v1.0.85 on) before the 16-bit ones --------
POWERS_32 = {
    ("system", 902): [0x0000, 45000],  # /Ac/Consumption/L1/Power 45 kW: beyond any 16-bit register
    ("system", 908): [0x0000, 40000],  # /Ac/Grid/L1/Power 40 kW import
    ("system", 884): [0x0001, 0x86A0],  # /Ac/PvOnOutput/L1/Power 100 kW
}
POWERS_16 = {  # what the 16-bit copies hold for the same D-Bus values (a float wraps: 40000 -> -25536)
    ("system", 817): [45000],
    ("system", 820): [40000],
    ("system", 808): [0x86A0],
}


def system_read(events: list[Event]) -> bool:
    return "/Ac/Grid/L1/Power" in values_of(events, "system")


def test_when_the_firmware_has_32_bit_powers_then_they_are_read_and_not_the_16_bit_ones() -> None:
    units = gx_units()
    units[100] = image(("system", "settings", "battery"), {**VALUES, **POWERS_32, **POWERS_16})
    server = GxModbusServer(units)
    source = ModbusSource(*settings(server))
    with server, started(source, until=system_read) as (_, events):
        system = values_of(events, "system")
        assert system["/Ac/Grid/L1/Power"] == 40000
        assert system["/Ac/Consumption/L1/Power"] == 45000
        assert system["/Ac/PvOnOutput/L1/Power"] == 100000
        reads = [struct.unpack(">HH", f[8:12]) for f in server.received if f[6] == 100]
        system_reads = [(a, n) for a, n in reads if 800 <= a < 920]
        assert system_reads and all(a > 825 for a, _ in system_reads), "16-bit power registers read"


def test_when_older_firmware_lacks_the_32_bit_powers_then_the_16_bit_ones_are_read() -> None:
    units = gx_units()
    older = image(("system", "settings", "battery"), {**VALUES, ("system", 820): [1500], ("system", 817): [800]})
    for address in range(884, 920):  # dbus_modbustcp before v1.0.85 (commit 79736c1): not mapped
        del older[address]
    units[100] = older
    server = GxModbusServer(units)
    source = ModbusSource(*settings(server))
    with server, started(source, until=system_read) as (sink, events):
        system = values_of(events, "system")
        assert system["/Ac/Grid/L1/Power"] == 1500
        assert system["/Ac/Consumption/L1/Power"] == 800
        sink.clear()
        later = sink.wait_for(lambda ev: len([e for e in ev if isinstance(e, Observation)]) > 60)
        assert values_of(later, "system")["/Ac/Grid/L1/Power"] == 1500, "the fallback is kept, poll after poll"
        assert "errors_exception_0x02" not in source.counters()  # learned at connect, planned around
        assert "/Ac/Grid/L1/Power@820" in source.describe()["system"]["fallbacks"]
