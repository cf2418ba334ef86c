"""The simulated GX's Modbus-TCP server against pymodbus' client: every dbus_modbustcp quirk we rely on."""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Iterator

import pytest
from pymodbus.client import ModbusTcpClient
from pymodbus.exceptions import ModbusException

from collector.simulator.faults import Clamp
from collector.simulator.gx import GxSimulator
from collector.simulator.recording import ModbusRequest

pytestmark = pytest.mark.integration

T = 20_401 * 86_400 + 13 * 3600 + 17  # a fixed second of a cycling day (seed 7)


class Clock:
    """A settable clock for the simulator."""

    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def clock() -> Clock:
    return Clock(T)


@pytest.fixture
def sim(clock: Clock) -> Iterator[GxSimulator]:
    gx = GxSimulator(seed=7, modbus_port=0, mqtt_port=None, clock=clock).start()
    yield gx
    gx.stop()


def num(value: object) -> float:
    """A simulated value that must be a number."""
    assert isinstance(value, int | float), value
    return float(value)


@pytest.fixture
def client(sim: GxSimulator) -> Iterator[ModbusTcpClient]:
    assert sim.modbus_port is not None
    c = ModbusTcpClient("127.0.0.1", port=sim.modbus_port, timeout=3, retries=0)
    assert c.connect()
    yield c
    c.close()


def raw_request(port: int, unit: int, pdu: bytes) -> bytes:
    """Send one Modbus-TCP frame by hand (pymodbus' client refuses counts outside 1..125)."""
    with socket.create_connection(("127.0.0.1", port), timeout=3) as s:
        s.sendall(struct.pack(">HHHB", 7, 0, len(pdu) + 1, unit) + pdu)
        header = s.recv(7)
        _tid, _pid, length, _unit = struct.unpack(">HHHB", header)
        return s.recv(length - 1)


def s16(word: int) -> int:
    return word - 0x10000 if word >= 0x8000 else word


def test_when_reading_the_system_block_then_values_match_the_truth(sim: GxSimulator, client: ModbusTcpClient) -> None:
    r = client.read_holding_registers(800, count=120, device_id=100)
    assert not r.isError()
    regs = r.registers
    truth = sim.truth(T)
    serial = b"".join(w.to_bytes(2, "big") for w in regs[0:6]).rstrip(b"\0").decode()
    assert serial == sim.portal_id
    assert regs[840 - 800] == round(num(truth[("system", "/Dc/Battery/Voltage")]) * 10)
    assert s16(regs[841 - 800]) == round(num(truth[("system", "/Dc/Battery/Current")]) * 10)
    assert regs[843 - 800] == round(num(truth[("system", "/Dc/Battery/Soc")]))
    assert regs[845 - 800] == round(-num(truth[("system", "/Dc/Battery/ConsumedAmphours")]) * 10)
    assert truth[("system", "/Ac/PvOnGrid/L1/Power")] is None
    assert regs[811 - 800] == 0  # invalid reads as 0
    assert regs[827 - 800] == 0xFFFF  # reserved
    gx_time = (regs[30] << 48) | (regs[31] << 32) | (regs[32] << 16) | regs[33]
    assert gx_time == T
    assert regs[834 - 800 : 836 - 800] == [0x0360, 0x0000]  # Venus v3.60 (D-Bus 0x036000) as the GX encodes it
    fc4 = client.read_input_registers(800, count=120, device_id=100)
    assert fc4.registers == regs


def test_when_reading_battery_registers_then_unit_100_is_the_shunt_and_225_the_bms(
    sim: GxSimulator, client: ModbusTcpClient
) -> None:
    truth = sim.truth(T)
    shunt = client.read_holding_registers(256, count=76, device_id=100).registers
    bms = client.read_holding_registers(256, count=76, device_id=225).registers
    assert shunt[259 - 256] == round(num(truth[("shunt", "/Dc/0/Voltage")]) * 100)
    assert bms[259 - 256] == round(num(truth[("bms", "/Dc/0/Voltage")]) * 100)
    assert shunt[265 - 256] == round(-num(truth[("shunt", "/ConsumedAmphours")]) * 10)
    assert bms[304 - 256] == 990  # Soh 99.0 % at scale 10
    assert shunt[304 - 256] == 0  # the shunt has no /Soh: absent reads 0
    block = client.read_holding_registers(1282, count=62, device_id=225).registers
    assert block[1289 - 1282] == 16
    assert block[1290 - 1282] == round(num(truth[("bms", "/System/MinCellVoltage")]) * 100)
    cell_id = b"".join(w.to_bytes(2, "big") for w in block[24:28]).rstrip(b"\0").decode()
    assert cell_id == truth[("bms", "/System/MinVoltageCellId")]
    alias = client.read_holding_registers(840, count=1, device_id=0)
    assert alias.registers == client.read_holding_registers(840, count=1, device_id=100).registers


def test_when_a_read_starts_on_or_crosses_a_gap_then_exception_2(client: ModbusTcpClient) -> None:
    assert client.read_holding_registers(255, count=2, device_id=100).exception_code == 2
    assert client.read_holding_registers(300, count=40, device_id=225).exception_code == 2  # 332.. unmapped
    assert client.read_holding_registers(1000, count=1, device_id=100).exception_code == 2
    assert not client.read_holding_registers(256, count=76, device_id=225).isError()


def test_when_count_is_0_or_over_125_then_exception_3(sim: GxSimulator) -> None:
    assert sim.modbus_port is not None
    assert raw_request(sim.modbus_port, 100, struct.pack(">BHH", 3, 800, 0)) == bytes([0x83, 3])
    assert raw_request(sim.modbus_port, 100, struct.pack(">BHH", 3, 800, 126)) == bytes([0x83, 3])
    assert raw_request(sim.modbus_port, 100, struct.pack(">BHH", 4, 800, 126)) == bytes([0x84, 3])


def test_when_checking_a_request_then_count_comes_before_address_and_address_before_unit(sim: GxSimulator) -> None:
    """backend.cpp checks the count, mappings.cpp then the start address in ONE map for all services, then
    whether a service of that register's type sits behind the unit id."""
    assert sim.modbus_port is not None
    port = sim.modbus_port
    assert raw_request(port, 99, struct.pack(">BHH", 3, 1000, 0)) == bytes([0x83, 3])  # no unit, no address: 3
    assert raw_request(port, 99, struct.pack(">BHH", 3, 1000, 1)) == bytes([0x83, 2])  # no unit, unmapped: 2
    assert raw_request(port, 99, struct.pack(">BHH", 3, 840, 1)) == bytes([0x83, 0x0A])  # mapped, no unit: 0x0A
    assert raw_request(port, 225, struct.pack(">BHH", 3, 800, 1)) == bytes([0x83, 0x0A])  # no system on 225
    assert raw_request(port, 225, struct.pack(">BHH", 3, 2900, 1)) == bytes([0x83, 0x0A])  # no settings on 225


def test_when_the_unit_is_unknown_then_exception_0a_for_every_mapped_register(client: ModbusTcpClient) -> None:
    for unit in (1, 99, 226, 247):
        assert client.read_holding_registers(840, count=1, device_id=unit).exception_code == 0x0A
        assert client.read_holding_registers(259, count=1, device_id=unit).exception_code == 0x0A  # never 0x02


def test_when_writing_with_readwrite_0_then_exception_2_recorded_and_nothing_changes(
    sim: GxSimulator, client: ModbusTcpClient
) -> None:
    before = client.read_holding_registers(2900, count=4, device_id=100).registers
    assert client.write_register(2901, 500, device_id=100).exception_code == 2  # writable, but ReadWrite = 0
    assert client.write_registers(2901, [500, 2], device_id=100).exception_code == 2
    assert client.write_register(840, 500, device_id=100).exception_code == 2  # read-only register
    assert client.write_coil(0, True, device_id=100).exception_code == 1  # FC5: not a function the GX has
    assert client.read_holding_registers(2900, count=4, device_id=100).registers == before
    writes = [r for r in sim.received if isinstance(r, ModbusRequest) and r.is_write]
    assert [(w.function_code, w.address, w.exception) for w in writes] == [
        (6, 2901, 2),
        (16, 2901, 2),
        (6, 840, 2),
        (5, 0, 1),
    ]


def test_when_writing_with_readwrite_1_then_only_read_only_registers_are_refused(clock: Clock) -> None:
    with GxSimulator(seed=7, modbus_port=0, mqtt_port=None, clock=clock, modbus_read_write=True) as gx:
        assert gx.modbus_port is not None
        port = gx.modbus_port
        assert raw_request(port, 100, struct.pack(">BHH", 6, 2901, 500)) == struct.pack(">BHH", 6, 2901, 500)
        assert raw_request(port, 100, struct.pack(">BHH", 6, 2900, 1)) == bytes([0x86, 2])  # read-only
        assert raw_request(port, 100, struct.pack(">BHHB", 16, 2901, 2, 4) + b"\0\1\0\2") == struct.pack(
            ">BHH", 16, 2901, 2
        )
        assert raw_request(port, 100, struct.pack(">BHHB", 16, 2902, 2, 4) + b"\0\1\0\2") == bytes([0x90, 2])  # 2903 r
        assert raw_request(port, 100, struct.pack(">BHHB", 16, 2901, 2, 3) + b"\0\1\0") == bytes([0x90, 3])
        assert raw_request(port, 99, struct.pack(">BHH", 6, 2901, 1)) == bytes([0x86, 0x0A])


def test_when_an_unsupported_function_is_used_then_exception_1(sim: GxSimulator) -> None:
    assert sim.modbus_port is not None
    for fc in (1, 5, 15, 22, 23):
        assert raw_request(sim.modbus_port, 100, struct.pack(">BHH", fc, 0, 8)) == bytes([0x80 | fc, 1])
    assert raw_request(sim.modbus_port, 100, bytes([0x2B, 0x0E, 1, 0])) == bytes([0xAB, 1])


def test_when_a_device_drops_then_its_unit_answers_0a_until_restored(sim: GxSimulator, client: ModbusTcpClient) -> None:
    sim.faults.drop_device("bms")
    sim.faults.drop_device("bms")  # idempotent
    assert client.read_holding_registers(256, count=76, device_id=225).exception_code == 0x0A
    sim.faults.drop_device("shunt")
    assert client.read_holding_registers(256, count=76, device_id=100).exception_code == 0x0A
    assert not client.read_holding_registers(800, count=120, device_id=100).isError()  # the system is still there
    sim.faults.restore_device("bms")
    sim.faults.restore_device("shunt")
    assert not client.read_holding_registers(256, count=76, device_id=225).isError()
    assert not client.read_holding_registers(256, count=76, device_id=100).isError()


def test_when_forcing_an_exception_then_every_request_to_that_unit_gets_it(
    sim: GxSimulator, client: ModbusTcpClient
) -> None:
    sim.faults.modbus_exception(225, 4)
    assert client.read_holding_registers(256, count=1, device_id=225).exception_code == 4
    assert not client.read_holding_registers(256, count=1, device_id=100).isError()
    sim.faults.modbus_exception(225, None)
    assert not client.read_holding_registers(256, count=1, device_id=225).isError()


@pytest.mark.parametrize(
    ("clamp", "expected"),
    [
        # int32 256, int16 258, uint16 259 and 260, int16 261
        ("max-1", [0x7FFF, 0xFFFE, 0x7FFE, 0xFFFE, 0xFFFE, 0x7FFE]),  # dbus_modbustcp v1.0.96 on
        ("max", [0x7FFF, 0xFFFF, 0x7FFF, 0xFFFF, 0xFFFF, 0x7FFF]),  # v1.0.85-v1.0.95
    ],
)
def test_when_out_of_range_then_registers_read_the_overflow_clamp(
    sim: GxSimulator, client: ModbusTcpClient, clamp: Clamp, expected: list[int]
) -> None:
    sim.faults.modbus_out_of_range(True, clamp=clamp)
    regs = client.read_holding_registers(256, count=6, device_id=100).registers
    assert regs == expected
    sim.faults.modbus_out_of_range(False)
    assert client.read_holding_registers(259, count=1, device_id=100).registers[0] < 6000


def test_when_the_whole_gx_freezes_then_modbus_requests_go_unanswered(sim: GxSimulator) -> None:
    assert sim.modbus_port is not None
    sim.faults.freeze(True)
    quick = ModbusTcpClient("127.0.0.1", port=sim.modbus_port, timeout=0.5, retries=0)
    assert quick.connect()
    try:
        with pytest.raises(ModbusException):  # no answer at all: the client times out
            quick.read_holding_registers(840, count=1, device_id=100)
    finally:
        quick.close()
    sim.faults.freeze(False)
    fresh = ModbusTcpClient("127.0.0.1", port=sim.modbus_port, timeout=3, retries=0)
    assert fresh.connect()
    try:
        assert not fresh.read_holding_registers(840, count=1, device_id=100).isError()
    finally:
        fresh.close()


def _seconds(words: list[int]) -> int:
    return (words[0] << 48) | (words[1] << 32) | (words[2] << 16) | words[3]


def test_when_the_shunt_service_hangs_then_its_registers_stop_but_830_and_other_services_go_on(
    sim: GxSimulator, client: ModbusTcpClient, clock: Clock
) -> None:
    def shunt() -> list[int]:
        return list(client.read_holding_registers(256, count=11, device_id=100).registers)  # power .. SoC

    def system() -> list[int]:
        return list(client.read_holding_registers(800, count=120, device_id=100).registers)

    sim.faults.hang_service("shunt")
    held, before = shunt(), system()
    for step in (1, 2, 3):
        clock.t = T + 600 * step
        after = system()
        assert shunt() == held, "a hung service's values do not change"
        assert _seconds(after[30:34]) == T + 600 * step, "register 830 is the server's clock: it goes on"
        assert after[40:47] == before[40:47], "system /Dc/Battery/* are copies of the hung shunt's values"
        assert after[102:110] != before[102:110], "the system service's own AC powers go on"
    sim.faults.hang_service("shunt", on=False)
    assert shunt() != held


def test_when_stopped_then_the_port_is_free_and_no_thread_is_left(clock: Clock) -> None:
    before = {t.name for t in threading.enumerate()}
    gx = GxSimulator(seed=1, modbus_port=0, clock=clock).start()
    port = gx.modbus_port
    assert port is not None
    c = ModbusTcpClient("127.0.0.1", port=port, timeout=2, retries=0)
    assert c.connect()
    assert not c.read_holding_registers(840, count=1, device_id=100).isError()
    gx.stop()
    c.close()
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
    for t in threading.enumerate():
        if t.name not in before and t.name.startswith("sim-"):
            t.join(2)
            assert not t.is_alive()
