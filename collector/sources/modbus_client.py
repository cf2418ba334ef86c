"""A Modbus-TCP client that can only read, by construction.

Two guards, both refusing before a single byte leaves the process:
- `ReadOnlyTcpClient.execute` refuses any request PDU whose function code is not 3 or 4;
- `ReadOnlyTcpClient.send`, the lowest level we control (the bytes handed to the socket), parses the
  MBAP frame and refuses any frame whose function code is not 3 or 4. So even a caller that reaches past
  our wrapper into the pymodbus client (`write_register`, a custom PDU, a packet trace hook that rewrites
  bytes) cannot send a write.
`ReadOnlyModbus` is the only interface the collector uses: `read(unit, address, count)` with errors
classified (absent unit, illegal address, other exception, connection lost).
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

from pymodbus.client import ModbusTcpClient
from pymodbus.exceptions import ModbusException
from pymodbus.pdu import ModbusPDU

from bess_common.errors import FatalError, RetryableError

READ_FUNCTION_CODES = frozenset({3, 4})
MBAP_HEADER_BYTES = 7
ABSENT_CODES = frozenset({0x0A, 0x0B})  # gateway path unavailable / target failed to respond
ILLEGAL_ADDRESS = 0x02


class WriteRefused(FatalError):
    """Something tried to send a Modbus function code other than a read (3, 4)."""


class UnitAbsent(Exception):
    """The GX answered exception 0x0A/0x0B: no service behind this unit id (device absent)."""

    def __init__(self, unit: int, code: int) -> None:
        super().__init__(f"unit {unit}: exception {code:#04x} (device absent)")
        self.unit = unit
        self.code = code


class ModbusRefused(Exception):
    """The GX answered another Modbus exception (e.g. 0x02 illegal address)."""

    def __init__(self, unit: int, address: int, code: int) -> None:
        super().__init__(f"unit {unit} address {address}: exception {code:#04x}")
        self.unit = unit
        self.address = address
        self.code = code


def check_frame(frame: bytes) -> None:
    """Raise WriteRefused unless `frame` is a Modbus-TCP frame carrying FC3 or FC4."""
    if len(frame) <= MBAP_HEADER_BYTES or frame[MBAP_HEADER_BYTES] not in READ_FUNCTION_CODES:
        code = frame[MBAP_HEADER_BYTES] if len(frame) > MBAP_HEADER_BYTES else None
        raise WriteRefused(f"refusing to send Modbus function code {code!r}: this client only reads (FC3/FC4)")


class ReadOnlyTcpClient(ModbusTcpClient):
    """pymodbus' sync TCP client with every non-read function code refused at the PDU and at the socket."""

    def connect(self) -> bool:
        """Open the socket quietly (pymodbus logs every failed attempt at error level; we count them)."""
        if self.socket:
            return True
        params = self.comm_params
        try:
            self.socket = socket.create_connection(
                (params.host, params.port), timeout=params.timeout_connect, source_address=params.source_address
            )
        except OSError:
            self.socket = None
        return self.socket is not None

    def execute(self, no_response_expected: bool, request: ModbusPDU) -> ModbusPDU:
        """Refuse any PDU that is not a read, then run it."""
        if request.function_code not in READ_FUNCTION_CODES:
            raise WriteRefused(f"refusing Modbus function code {request.function_code}: read-only client")
        return super().execute(no_response_expected, request)

    def send(self, request: bytes | bytearray, addr: tuple[Any, ...] | None = None) -> int:
        """Last stop before the socket: refuse any frame that is not FC3/FC4."""
        if request:
            check_frame(bytes(request))
        return int(super().send(request, addr))


ClientFactory = Callable[[str, int, float], ModbusTcpClient]


def default_client_factory(host: str, port: int, timeout_s: float) -> ModbusTcpClient:
    """The guarded client; no retries inside pymodbus (our poll loop owns retries)."""
    return ReadOnlyTcpClient(host, port=port, timeout=timeout_s, retries=0, name="gx")


class ReadOnlyModbus:
    """Reads holding registers (FC3) from a GX; offers no way to write."""

    def __init__(
        self, host: str, port: int, timeout_s: float, client_factory: ClientFactory = default_client_factory
    ) -> None:
        self._client = client_factory(host, port, timeout_s)
        self._ensure_guarded()

    def _ensure_guarded(self) -> None:
        if not isinstance(self._client, ReadOnlyTcpClient):
            raise WriteRefused("the Modbus client factory must return a ReadOnlyTcpClient")

    def connect(self) -> None:
        """Open the TCP connection or raise RetryableError."""
        if not self._client.connect():
            raise RetryableError("cannot connect to the GX Modbus-TCP server")

    def close(self) -> None:
        """Close the connection (safe to call twice)."""
        self._client.close()

    def read(self, unit: int, address: int, count: int) -> list[int]:
        """`count` registers from `address` of `unit` (FC3), or a classified error."""
        try:
            response = self._client.read_holding_registers(address, count=count, device_id=unit)
        except WriteRefused:
            raise
        except ModbusException as exc:  # connection lost, timeout, garbled frame
            self._client.close()
            raise RetryableError(f"Modbus read failed: {exc}") from None
        except OSError as exc:
            self._client.close()
            raise RetryableError(f"Modbus connection error: {exc}") from None
        if response.isError():
            code = int(getattr(response, "exception_code", 0))
            if code in ABSENT_CODES:
                raise UnitAbsent(unit, code)
            raise ModbusRefused(unit, address, code)
        registers = list(response.registers)
        if len(registers) != count:
            raise ModbusRefused(unit, address, -1)
        return registers
