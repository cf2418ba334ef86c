"""Register encoding of the simulated GX: every type and scale sign round-trips through our own decoder."""

from __future__ import annotations

import pytest

from collector.gx.tables import Register, registers
from collector.simulator.encoding import encode, type_range


def decode(reg: Register, words: list[int]) -> float | str:
    """Independent decoder: words -> value as a Modbus client computes it (value = register / scale)."""
    if reg.type == "string":
        return b"".join(w.to_bytes(2, "big") for w in words).rstrip(b"\0").decode("ascii")
    raw = 0
    for w in words:
        raw = (raw << 16) | w
    bits = 16 * len(words)
    if reg.type.startswith("int") and raw >= 1 << (bits - 1):
        raw -= 1 << bits
    return raw / reg.scale


def reg(reg_type: str, scale: float, words: int = 1) -> Register:
    return Register("battery", 0, reg_type, words, scale, "", "/X", False)  # type: ignore[arg-type]


def _sample_value(r: Register) -> float:
    lo, hi = type_range(r.type)
    target = (lo + hi) * 0.37 + hi * 0.21  # somewhere inside the range, not a round number
    return round(target) / r.scale


@pytest.mark.parametrize(
    "r", [r for r in registers() if r.type not in ("reserved", "string")], ids=lambda r: f"{r.service}-{r.address}"
)
def test_every_numeric_register_round_trips(r: Register) -> None:
    value = _sample_value(r)
    words = encode(r, value)
    assert len(words) == r.words
    assert all(0 <= w <= 0xFFFF for w in words)
    assert decode(r, words) == pytest.approx(value, abs=0.5 / abs(r.scale))


@pytest.mark.parametrize(
    ("reg_type", "scale", "words", "value", "expected"),
    [
        ("uint16", 100, 1, 52.71, [5271]),
        ("int16", 10, 1, -12.34, [0xFF85]),  # -123 two's complement
        ("int16", 10, 1, -0.05, [0xFFFF]),  # half away from zero: -0.5 -> -1
        ("uint16", -10, 1, -12.3, [123]),  # ConsumedAmphours: negative on D-Bus, positive register
        ("uint32", -1, 2, -70000.4, [0x0001, 0x1170]),
        ("uint16", 0.01, 1, 3600.0, [36]),  # TimeToGo in 100 s steps
        ("int32", 1, 2, -2, [0xFFFF, 0xFFFE]),  # high word first
        ("uint64", 1, 4, 1_762_560_000, [0, 0, 0x690E, 0x8800]),
        ("uint16", 1, 1, None, [0]),  # invalid reads as 0
        ("int16", 10, 1, float("nan"), [0]),
        ("uint16", 1, 1, 70_000, [0xFFFE]),  # integer D-Bus value clamped at MAX-1
        ("int16", 1, 1, 40_000, [0x7FFE]),
        ("int16", 1, 1, -40_000, [0x8000]),
        ("uint16", 1, 1, -5, [0]),
        ("uint16", 1, 1, 70_000.0, [70_000 & 0xFFFF]),  # a float is not clamped: it wraps
    ],
)
def test_when_encoding_then_the_words_match_dbus_modbustcp(
    reg_type: str, scale: float, words: int, value: object, expected: list[int]
) -> None:
    assert encode(reg(reg_type, scale, words), value) == expected


def test_strings_are_two_chars_per_register_nul_padded() -> None:
    r = Register("system", 800, "string", 6, 1, "", "/Serial", False)
    words = encode(r, "c0619ab2f4e1")
    assert words[0] == (ord("c") << 8) | ord("0")
    assert decode(r, words) == "c0619ab2f4e1"
    short = encode(Register("battery", 1306, "string", 4, 1, "", "/System/MinVoltageCellId", False), "C7")
    assert short == [(ord("C") << 8) | ord("7"), 0, 0, 0]
    assert encode(r, None) == [0] * 6


def test_reserved_reads_ffff() -> None:
    assert encode(Register("system", 827, "reserved", 1, 1, "", "", False), 12) == [0xFFFF]


def test_when_register_834_is_encoded_then_it_is_the_gxs_firmware_operation() -> None:
    """system /FirmwareVersion 0xMMmmBB is served as 0xMMmm00BB (dbus_modbustcp FirmwareOperation)."""
    reg = next(r for r in registers() if r.service == "system" and r.address == 834)
    assert encode(reg, 0x036000) == [0x0360, 0x0000]  # v3.60
    assert encode(reg, 0x035512) == [0x0355, 0x0012]  # v3.55~12
