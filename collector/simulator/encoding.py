"""D-Bus value -> Modbus register words, as dbus_modbustcp encodes them (pure).

register = round(value * scale) (half away from zero); a negative scale flips the sign; big-endian, high
word first; strings 2 ASCII chars per register, NUL-padded; invalid/None/absent -> 0; reserved -> 0xFFFF.
Integer-typed D-Bus values are clamped to the type's range, stopping at MAX-1 (0x7FFF/0xFFFF avoided);
float-typed values are not clamped and wrap like a C integer conversion.
"""

from __future__ import annotations

import math

from collector.gx.tables import Register

_BITS = {"int16": 16, "uint16": 16, "int32": 32, "uint32": 32, "uint64": 64}


def type_range(reg_type: str) -> tuple[int, int]:
    """The (min, max) integer a register type holds."""
    bits = _BITS[reg_type]
    if reg_type.startswith("u"):
        return 0, (1 << bits) - 1
    return -(1 << (bits - 1)), (1 << (bits - 1)) - 1


def _round_half_away(x: float) -> int:
    return int(math.copysign(math.floor(abs(x) + 0.5), x))


def to_words(raw: int, words: int) -> list[int]:
    """Two's-complement `raw` as `words` 16-bit registers, high word first."""
    bits = 16 * words
    raw &= (1 << bits) - 1
    return [(raw >> (16 * (words - 1 - k))) & 0xFFFF for k in range(words)]


def encode_string(value: object, words: int) -> list[int]:
    """ASCII, two chars per register (high byte first), NUL-padded and truncated to `words`."""
    data = str(value).encode("ascii", "replace")[: 2 * words] if value is not None else b""
    data = data.ljust(2 * words, b"\0")
    return [(data[2 * k] << 8) | data[2 * k + 1] for k in range(words)]


def firmware_register(version: int) -> int:
    """Register 834 from system /FirmwareVersion (0xMMmmBB): 0xMMmm00BB, 8 extra bits before the beta number
    (victronenergy/dbus_modbustcp @24c50db, mappings.cpp, Mappings::FirmwareOperation::calculate)."""
    return ((version << 8) & 0xFFFF0000) + (version & 0xFF)


# Registers the GX computes from their D-Bus value instead of scaling it (mappings.cpp's "operations").
OPERATIONS = {("system", "/FirmwareVersion"): firmware_register}


def encode(reg: Register, value: object) -> list[int]:
    """The register words for one D-Bus value (None = invalid or absent -> 0)."""
    operation = OPERATIONS.get((reg.service, reg.path))
    if operation is not None and isinstance(value, int):
        value = operation(value)
    if reg.type == "reserved":
        return [0xFFFF] * reg.words
    if reg.type == "string":
        return encode_string(value, reg.words)
    if value is None or isinstance(value, str):
        return [0] * reg.words
    assert isinstance(value, int | float)
    if isinstance(value, float) and not math.isfinite(value):
        return [0] * reg.words
    raw = _round_half_away(float(value) * reg.scale)
    if isinstance(value, int):  # bool is an int too
        lo, hi = type_range(reg.type)
        raw = max(lo, min(hi - 1, raw))
    return to_words(raw, reg.words)


def clamped(reg: Register, clamp: str) -> list[int]:
    """The register at its upper overflow clamp, for the `modbus_out_of_range` fault: MAX-1 ("max-1",
    dbus_modbustcp v1.0.96 on) or MAX ("max", v1.0.85-v1.0.95). Strings and reserved read as usual."""
    if reg.type in ("reserved", "string"):
        return encode(reg, None)
    _lo, hi = type_range(reg.type)
    return to_words(hi - 1 if clamp == "max-1" else hi, reg.words)
