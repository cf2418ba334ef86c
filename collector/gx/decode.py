"""Decode GX Modbus register words into D-Bus values, driven by the register map (pure).

Rules (victronenergy/dbus_modbustcp mappings.cpp and attributes.csv; cited by commit in docs/collector.md):
- Big-endian, high word first; strings are 2 ASCII chars per register, high byte first, NUL-padded.
- value = register / scale; a negative scale flips the sign; scale 0.01 means units of 100.
- `reserved` registers read 0xFFFF and carry nothing: they decode to None (not a value).
- The GX reads an invalid D-Bus value as 0 (mappings.cpp, Mappings::getValue). For quantities that cannot
  truly be 0 (voltages, capacity, state of health, cell count) a 0 is treated as Invalid.NULL rather than
  written as a real zero. So is TimeToGo (battery 303, system 846): Victron's register list gives "0 =
  charging" for both (CCGX-Modbus-TCP-register-list.xlsx); in 100 s steps anything under 50 s is 0 too.
- An integer register at the edge of its type is the GX's overflow clamp or a "not available" dialect,
  never a measurement: it decodes to Saturated, which sources count as garbage ("out_of_range") and hand
  to the grid as Invalid.NULL. dbus_modbustcp (mappings.cpp, convertFromDbus) clamps an integer-typed
  D-Bus value to [MIN, MAX] since v1.0.85 (commit 07b12fd) and to [MIN, MAX-1] since v1.0.96 (commit
  4ac2998, because 0xFFFF/0x7FFF mean "invalid" in some dialects). Both conventions are flagged: MAX,
  MAX-1 and, for signed types, MIN (0xFFFF, 0xFFFE, 0x7FFF, 0x7FFE, 0x8000 for 16 bits; likewise wider).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

from collector.gx.tables import Register
from collector.observation import Invalid

# Quantities where a Modbus 0 means "invalid on D-Bus" (venus#362), or "not applicable" (TimeToGo).
ZERO_IS_INVALID_UNITS = frozenset({"V"})
ZERO_IS_INVALID_PATHS = frozenset(
    {"/Capacity", "/Soh", "/System/NrOfCellsPerBattery", "/TimeToGo", "/Dc/Battery/TimeToGo"}
)

_BITS = {"uint16": 16, "int16": 16, "uint32": 32, "int32": 32, "uint64": 64}


class Saturated(Enum):
    """Marker: the register sits at its type's limit (overflow clamp / not available)."""

    LIMIT = "limit"


DecodedValue = float | int | str | Invalid | Saturated


@dataclass(frozen=True, slots=True)
class BlockRead:
    """The words returned by one contiguous read starting at `address`."""

    address: int
    words: tuple[int, ...]

    @property
    def end(self) -> int:
        """One past the last address covered."""
        return self.address + len(self.words)


def _raw_int(reg_type: str, words: Sequence[int]) -> int:
    raw = 0
    for word in words:
        raw = (raw << 16) | (word & 0xFFFF)
    bits = _BITS[reg_type]
    if reg_type.startswith("int") and raw >= 1 << (bits - 1):
        raw -= 1 << bits
    return raw


def _is_saturated(reg_type: str, raw: int) -> bool:
    """At the clamp of either dbus_modbustcp convention: MAX (v1.0.85-v1.0.95), MAX-1 (v1.0.96 on), or MIN."""
    bits = _BITS[reg_type]
    if reg_type.startswith("uint"):
        return raw >= (1 << bits) - 2
    return raw >= (1 << (bits - 1)) - 2 or raw == -(1 << (bits - 1))


def _scaled(raw: int, scale: float) -> float | int:
    if scale == 1:
        return raw
    inverse = 1 / scale
    if abs(inverse) >= 1 and inverse == round(inverse):
        return float(raw * round(inverse))  # scale 0.01 / -1: exact multiplication, no 700.0000000001
    return raw / scale


def _decode_string(words: Sequence[int]) -> str:
    data = b"".join((w & 0xFFFF).to_bytes(2, "big") for w in words)
    return data.split(b"\x00", 1)[0].decode("ascii", errors="replace").strip()


def decode_register(reg: Register, words: Sequence[int]) -> DecodedValue | None:
    """The value of one register from its words; None for reserved registers."""
    if len(words) != reg.words:
        raise ValueError(f"register {reg.address} needs {reg.words} words, got {len(words)}")
    if reg.type == "reserved":
        return None
    if reg.type == "string":
        return _decode_string(words)
    raw = _raw_int(reg.type, words)
    if _is_saturated(reg.type, raw):
        return Saturated.LIMIT
    if raw == 0 and (reg.unit in ZERO_IS_INVALID_UNITS or reg.path in ZERO_IS_INVALID_PATHS):
        return Invalid.NULL
    return _scaled(raw, reg.scale)


def decode_block(registers: Sequence[Register], block: BlockRead) -> dict[str, DecodedValue]:
    """D-Bus path -> value for every non-reserved register inside the block. A path's plain register wins
    over its '#' copies; a copy is used only when the block holds no plain register for that path (older
    firmware without it, read on its own after a refused block)."""
    out: dict[str, DecodedValue] = {}
    plain_first = sorted(registers, key=lambda r: "#" in r.dbus_path)  # stable: address order within each
    for reg in plain_first:
        if reg.address < block.address or reg.end > block.end or not reg.dbus_path:
            continue
        offset = reg.address - block.address
        value = decode_register(reg, block.words[offset : offset + reg.words])
        if value is not None:
            out.setdefault(reg.path, value)
    return out


def decode_sources(sources: Sequence[Register], block: BlockRead) -> dict[str, DecodedValue]:
    """D-Bus path -> value for each chosen register inside the block (a fallback stands in for its path)."""
    out: dict[str, DecodedValue] = {}
    for reg in sources:
        if reg.address < block.address or reg.end > block.end:
            continue
        offset = reg.address - block.address
        value = decode_register(reg, block.words[offset : offset + reg.words])
        if value is not None:
            out[reg.path] = value
    return out
