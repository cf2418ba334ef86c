"""A Modbus-TCP server with the Cerbo GX's (dbus_modbustcp) behaviour, on its own threads.

Hand-written on the standard library's socketserver rather than pymodbus' server: the GX's semantics
(one address map shared by every service, the order in which a request is checked, exception 2 for an
unmapped or crossing span and for a refused write, 0x0A for a unit with no such service or a device that
left D-Bus) are exact this way; every request is recorded. The request handling is a pure
function (`handle_pdu`) so it is table-testable; `ModbusServer` is the thin socket edge.
"""

from __future__ import annotations

import contextlib
import socket
import socketserver
import struct
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from collector.gx.addressmap import AddressMap, Part
from collector.gx.tables import Register, registers, unit_for_instance
from collector.simulator.columns import Key, Value
from collector.simulator.devices import DEVICES, INVERTERS
from collector.simulator.encoding import clamped, encode
from collector.simulator.faults import Faults
from collector.simulator.recording import ModbusRequest, Recorder

ILLEGAL_FUNCTION = 0x01
ILLEGAL_DATA_ADDRESS = 0x02
ILLEGAL_DATA_VALUE = 0x03
GATEWAY_PATH_UNAVAILABLE = 0x0A
MAX_REGISTERS = 125  # per read (FC3/FC4) and per FC16 write
READ_FUNCTION_CODES = frozenset({3, 4})
WRITE_SINGLE, WRITE_MULTIPLE = 6, 16  # the only writes dbus_modbustcp handles; FC5/15/22/23 get exception 1

# unit id -> {service type -> simulated role}. Unit 0 is an alias of 100 on the GX (device instance 0).
UNIT_SERVICES: dict[int, dict[str, str]] = {
    100: {"system": "system", "settings": "settings", "battery": "shunt"},
    225: {"battery": "bms"},
}


def simulated_units(inverter: str = "vebus") -> dict[int, dict[str, str]]:
    """UNIT_SERVICES plus the simulated devices, each on its instance's unit id (collector/gx/unitids.csv):
    the Multi vebus/276 on 227, the MPPTs 279 and 280 on 226 and 215, the grid meter 30 on 30, a Multi RS
    multi/0 on 100. Only the chosen inverter (of INVERTERS) is there."""
    out = {unit: dict(services) for unit, services in UNIT_SERVICES.items()}
    for role, (service, instance) in DEVICES.items():
        unit = unit_for_instance(instance)
        if unit is None or (role in INVERTERS and role != inverter):
            continue
        out.setdefault(unit, {})[service] = role
    return out


@dataclass(frozen=True, slots=True)
class RegisterMap:
    """The GX's ONE address map, shared by every service, and which simulated role serves which service on
    which unit id. dbus_modbustcp keeps a single address -> register map (mappings.cpp, mDBusModbusMap, keyed
    by start address; older releases list overlapping registers) and looks the service up by (service type,
    unit id) only after the address was found."""

    addresses: AddressMap
    services: dict[int, dict[str, str]]  # unit id -> {service type -> role}

    def start(self, address: int) -> int | None:
        """See AddressMap.start."""
        return self.addresses.start(address)

    def walk(self, address: int, count: int) -> list[Part] | None:
        """See AddressMap.walk: the registers a read covers, or None (exception 2)."""
        return self.addresses.walk(address, count)


def build_map(
    unit_services: dict[int, dict[str, str]] | None = None, layout: Sequence[Register] | None = None
) -> RegisterMap:
    """The shared address map of registers.csv (or of `layout`, one release's registers) plus the unit ->
    service table; raises on an address that two services claim (the GX's map cannot hold that)."""
    cover: dict[int, Register] = {}
    regs = registers() if layout is None else layout
    for reg in regs:
        for address in range(reg.address, reg.end):
            other = cover.get(address)
            if other is not None and other.service != reg.service:
                raise ValueError(f"register map: address {address} is claimed by {other.service} and {reg.service}")
            cover[address] = reg
    services = dict(unit_services or simulated_units())
    if 100 in services:
        services[0] = services[100]
    return RegisterMap(AddressMap.of(regs), services)


def read_words(
    rmap: RegisterMap, unit: int, parts: list[Part], values: dict[Key, Value], *, out_of_range: str | None
) -> list[int]:
    """The words of a read already checked (every address mapped, every service present)."""
    words: list[int] = []
    for reg, offset, n in parts:
        role = rmap.services[unit][reg.service]
        full = clamped(reg, out_of_range) if out_of_range else encode(reg, values.get((role, reg.path)))
        words.extend(full[offset : offset + n])
    return words


def _exception(fc: int, code: int) -> bytes:
    return bytes([(fc | 0x80) & 0xFF, code])


def _role(rmap: RegisterMap, faults: Faults, unit: int, reg: Register) -> str | None:
    """The role serving `reg`'s service on `unit`, or None when no such service is on D-Bus there."""
    role = rmap.services.get(unit, {}).get(reg.service)
    return None if role is None or faults.is_dropped(role) else role


def _check_span(
    rmap: RegisterMap, faults: Faults, unit: int, span: tuple[int, int], *, write: bool, read_write: bool
) -> tuple[int | None, list[Part]]:
    """dbus_modbustcp's DataIterator + handleRequest order (mappings.cpp): the start address must be mapped
    (else 2); the start register's service must sit behind the unit id (else 0x0A); each following register
    must start where the previous one ended and its service be present (else 2); a write needs ReadWrite = 1
    and a writable register (else 2, PermissionError -> IllegalDataAddress in backend.cpp)."""
    address, count = span
    first = rmap.start(address)
    if first is None:
        return ILLEGAL_DATA_ADDRESS, []
    if _role(rmap, faults, unit, rmap.addresses.entries[rmap.addresses.starts[first]]) is None:
        return GATEWAY_PATH_UNAVAILABLE, []
    parts = rmap.walk(address, count)
    if parts is None:
        return ILLEGAL_DATA_ADDRESS, []
    for reg, _, _ in parts:
        if _role(rmap, faults, unit, reg) is None:
            return ILLEGAL_DATA_ADDRESS, []
        if write and (not read_write or not reg.writable):
            return ILLEGAL_DATA_ADDRESS, []
    return None, parts


def _request_shape(fc: int, pdu: bytes) -> tuple[int | None, int | None, int | None]:
    """(address, count, exception) from the PDU: the count check comes first, before any address (backend.cpp)."""
    if len(pdu) < 5:
        return None, None, ILLEGAL_DATA_VALUE
    address = int.from_bytes(pdu[1:3], "big")
    if fc == WRITE_SINGLE:
        return address, 1, None
    count = int.from_bytes(pdu[3:5], "big")
    if not 1 <= count <= MAX_REGISTERS:
        return address, count, ILLEGAL_DATA_VALUE
    if fc == WRITE_MULTIPLE and (len(pdu) < 6 or pdu[5] != 2 * count or len(pdu) != 6 + 2 * count):
        return address, count, ILLEGAL_DATA_VALUE
    return address, count, None


def handle_pdu(
    rmap: RegisterMap,
    faults: Faults,
    values: Callable[[], dict[Key, Value]],
    unit: int,
    pdu: bytes,
    *,
    read_write: bool = False,
) -> tuple[bytes, ModbusRequest]:
    """Answer one request PDU; returns the response PDU and the record of the request.

    Order as in dbus_modbustcp (backend.cpp, mappings.cpp): function code (only 3, 4, 6, 16; else 1),
    count (1..125, else 3), start address in the one shared map (else 2), a service behind the unit id
    (else 0x0A), the rest of the span (else 2), write permission (else 2). A fault-forced exception wins.
    `read_write` is the GX's Settings/ModbusServer/ReadWrite (False = 0: every write refused)."""
    fc = pdu[0] if pdu else 0
    forced = faults.exception_for(unit)
    if fc not in READ_FUNCTION_CODES and fc not in (WRITE_SINGLE, WRITE_MULTIPLE):
        refused = forced if forced is not None else ILLEGAL_FUNCTION
        start = int.from_bytes(pdu[1:3], "big") if len(pdu) >= 3 else None
        return _exception(fc, refused), ModbusRequest(unit, fc, start, None, refused)
    address, count, code = _request_shape(fc, pdu)
    if forced is not None:
        code = forced
    parts: list[Part] = []
    if code is None and address is not None and count is not None:
        write = fc not in READ_FUNCTION_CODES
        code, parts = _check_span(rmap, faults, unit, (address, count), write=write, read_write=read_write)
    if code is not None or address is None or count is None:
        code = code or ILLEGAL_DATA_VALUE
        return _exception(fc, code), ModbusRequest(unit, fc, address, count, code)
    if fc in READ_FUNCTION_CODES:
        words = read_words(rmap, unit, parts, values(), out_of_range=faults.out_of_range())
        body = bytes([fc, 2 * len(words)]) + struct.pack(f">{len(words)}H", *words)
    else:  # an accepted write (ReadWrite = 1, writable registers): the standard echo; the simulation ignores it
        body = pdu[:5]
    return body, ModbusRequest(unit, fc, address, count, None)


class _Handler(socketserver.BaseRequestHandler):
    server: ModbusServer

    def handle(self) -> None:
        sock: socket.socket = self.request
        self.server.track(sock, add=True)
        try:
            while True:
                header = _recv_exact(sock, 7)
                if header is None:
                    return
                tid, pid, length, unit = struct.unpack(">HHHB", header)
                pdu = _recv_exact(sock, length - 1) if length > 1 else b""
                if pdu is None or pid != 0:
                    return
                reply = self.server.answer(unit, pdu)
                if self.server.unanswered():
                    continue  # the whole GX hangs (faults.freeze): recorded, never answered
                sock.sendall(struct.pack(">HHHB", tid, 0, len(reply) + 1, unit) + reply)
        except OSError:
            return
        finally:
            self.server.track(sock, add=False)


def _recv_exact(sock: socket.socket, n: int) -> bytes | None:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            return None
        data += chunk
    return data


class ModbusServer(socketserver.ThreadingTCPServer):
    """The GX's Modbus-TCP server on (host, port); port 0 picks a free one (see `.port`)."""

    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False

    def __init__(
        self,
        host: str,
        port: int,
        faults: Faults,
        values: Callable[[], dict[Key, Value]],
        recorder: Recorder,
        *,
        read_write: bool = False,
        layout: Sequence[Register] | None = None,
        inverter: str = "vebus",
    ) -> None:
        super().__init__((host, port), _Handler)
        self.port = int(self.server_address[1])
        self._map = build_map(simulated_units(inverter), layout=layout)
        self._faults = faults
        self._values = values
        self._recorder = recorder
        self._read_write = read_write
        self._clients: set[socket.socket] = set()
        self._clients_lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def answer(self, unit: int, pdu: bytes) -> bytes:
        """Handle one request and record it."""
        reply, record = handle_pdu(self._map, self._faults, self._values, unit, pdu, read_write=self._read_write)
        self._recorder.add(record)
        return reply

    def unanswered(self) -> bool:
        """Whether requests go unanswered (the whole GX hangs)."""
        return self._faults.frozen_values() is not None

    def track(self, sock: socket.socket, add: bool) -> None:
        """Remember open client sockets so stop() can close them."""
        with self._clients_lock:
            if add:
                self._clients.add(sock)
            else:
                self._clients.discard(sock)

    def start(self) -> None:
        """Serve on a background thread."""
        self._thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.1}, name="sim-modbus", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop serving, drop every client connection and free the port."""
        if self._thread is not None:
            self.shutdown()
        with self._clients_lock:
            clients = list(self._clients)
        for sock in clients:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self.server_close()
        if self._thread is not None:
            self._thread.join(5.0)
