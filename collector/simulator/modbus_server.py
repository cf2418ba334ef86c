"""A Modbus-TCP server with the Cerbo GX's (dbus_modbustcp) behaviour, on its own threads.

Hand-written on the standard library's socketserver rather than pymodbus' server: the GX's semantics
(exception 2 for a read that starts on or crosses an unmapped address, 0x0A for an absent unit or a device
that left D-Bus, every write refused and recorded) are exact this way. The request handling is a pure
function (`handle_pdu`) so it is table-testable; `ModbusServer` is the thin socket edge.
"""

from __future__ import annotations

import contextlib
import socket
import socketserver
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass

from collector.gx.tables import Register, registers
from collector.simulator.encoding import absurd, encode
from collector.simulator.faults import Faults
from collector.simulator.recording import WRITE_FUNCTION_CODES, ModbusRequest, Recorder
from collector.simulator.truth import Key, Value

ILLEGAL_FUNCTION = 0x01
ILLEGAL_DATA_ADDRESS = 0x02
ILLEGAL_DATA_VALUE = 0x03
GATEWAY_PATH_UNAVAILABLE = 0x0A
WRITE_REFUSED = ILLEGAL_FUNCTION  # Settings/ModbusServer/ReadWrite = 0: every write is refused
MAX_READ_REGISTERS = 125

# unit id -> {service type -> simulated role}. Unit 0 is an alias of 100 on the GX.
UNIT_SERVICES: dict[int, dict[str, str]] = {
    100: {"system": "system", "settings": "settings", "battery": "shunt"},
    225: {"battery": "bms"},
}


@dataclass(frozen=True, slots=True)
class Slot:
    """The register covering one address, and which simulated device serves it."""

    register: Register
    role: str


def build_maps(unit_services: dict[int, dict[str, str]] | None = None) -> dict[int, dict[int, Slot]]:
    """Per unit id: every mapped address -> the register covering it."""
    out: dict[int, dict[int, Slot]] = {}
    for unit, services in (unit_services or UNIT_SERVICES).items():
        cover: dict[int, Slot] = {}
        for reg in registers():
            role = services.get(reg.service)
            if role is not None:
                for address in range(reg.address, reg.end):
                    cover[address] = Slot(reg, role)
        out[unit] = cover
    if 100 in out:
        out[0] = out[100]
    return out


def read_words(
    cover: dict[int, Slot], address: int, count: int, values: dict[Key, Value], out_of_range: bool
) -> list[int]:
    """The words of a read already checked to be fully mapped."""
    words: list[int] = []
    a = address
    while a < address + count:
        slot = cover[a]
        reg = slot.register
        full = absurd(reg) if out_of_range else encode(reg, values.get((slot.role, reg.path)))
        words.extend(full[a - reg.address :])
        a = reg.end
    return words[:count]


def _exception(fc: int, code: int) -> bytes:
    return bytes([(fc | 0x80) & 0xFF, code])


def _check_read(maps: dict[int, dict[int, Slot]], faults: Faults, unit: int, address: int, count: int) -> int | None:
    forced = faults.exception_for(unit)
    if forced is not None:
        return forced
    cover = maps.get(unit)
    if cover is None:
        return GATEWAY_PATH_UNAVAILABLE
    if count < 1 or count > MAX_READ_REGISTERS:
        return ILLEGAL_DATA_VALUE
    slots = [cover.get(a) for a in range(address, address + count)]
    if any(s is None for s in slots):
        return ILLEGAL_DATA_ADDRESS
    if any(faults.is_dropped(s.role) for s in slots if s is not None):
        return GATEWAY_PATH_UNAVAILABLE
    return None


def handle_pdu(
    maps: dict[int, dict[int, Slot]], faults: Faults, values: Callable[[], dict[Key, Value]], unit: int, pdu: bytes
) -> tuple[bytes, ModbusRequest]:
    """Answer one request PDU; returns the response PDU and the record of the request."""
    fc = pdu[0] if pdu else 0
    address = int.from_bytes(pdu[1:3], "big") if len(pdu) >= 3 else None
    count = int.from_bytes(pdu[3:5], "big") if len(pdu) >= 5 and fc not in (5, 6) else None
    if fc in (3, 4):
        if address is None or count is None:
            code: int | None = ILLEGAL_DATA_VALUE
        else:
            code = _check_read(maps, faults, unit, address, count)
        if code is None and address is not None and count is not None:
            words = read_words(maps[unit], address, count, values(), faults.out_of_range())
            body = bytes([fc, 2 * len(words)]) + struct.pack(f">{len(words)}H", *words)
            return body, ModbusRequest(unit, fc, address, count, None)
        return _exception(fc, code or ILLEGAL_DATA_VALUE), ModbusRequest(unit, fc, address, count, code)
    forced = faults.exception_for(unit)
    code = forced if forced is not None else (WRITE_REFUSED if fc in WRITE_FUNCTION_CODES else ILLEGAL_FUNCTION)
    return _exception(fc, code), ModbusRequest(unit, fc, address, count, code)


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
        self, host: str, port: int, faults: Faults, values: Callable[[], dict[Key, Value]], recorder: Recorder
    ) -> None:
        super().__init__((host, port), _Handler)
        self.port = int(self.server_address[1])
        self._maps = build_maps()
        self._faults = faults
        self._values = values
        self._recorder = recorder
        self._clients: set[socket.socket] = set()
        self._clients_lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def answer(self, unit: int, pdu: bytes) -> bytes:
        """Handle one request and record it."""
        reply, record = handle_pdu(self._maps, self._faults, self._values, unit, pdu)
        self._recorder.add(record)
        return reply

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
