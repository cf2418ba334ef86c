"""Table tests for the Modbus register decoder: every type, scale and special value in the map."""

from __future__ import annotations

import math

import pytest

from collector.gx import tables
from collector.gx.decode import BlockRead, Saturated, decode_block, decode_register
from collector.observation import Invalid


def reg(service: str, address: int) -> tables.Register:
    return next(r for r in tables.registers_for(service) if r.address == address)


@pytest.mark.parametrize(
    ("service", "address", "words", "expected"),
    [
        # uint16, scale 10, volts (system battery voltage 52.3 V)
        ("system", 840, [523], 52.3),
        # int16, scale 10, negative current (discharging -12.5 A)
        ("system", 841, [0x10000 - 125], -12.5),
        # int16 scale 1, negative watts
        ("system", 842, [0x10000 - 650], -650),
        # uint16 scale 1
        ("system", 843, [87], 87),
        # uint16 scale -10: ConsumedAmphours sent positive, flipped to negative
        ("system", 845, [123], -12.3),
        # uint16 scale 0.01: TimeToGo in units of 100 s
        ("system", 846, [7], 700.0),
        # uint64 seconds (GX clock), high word first
        ("system", 830, [0, 0, 0x6789, 0xABCD], 0x6789ABCD),
        # uint32 firmware version
        ("system", 834, [0x0003, 0x0050], 0x00030050),
        # int32 negative (inverter/charger power)
        ("system", 870, [0xFFFF, 0xFC18], -1000),
        # int32 scale 10
        ("system", 868, [0x0000, 0x0190], 40.0),
        # uint32 scale -1 (ConsumedAmphours in whole Ah)
        ("battery", 330, [0x0000, 0x0064], -100.0),
        # uint16 scale 100 (shunt voltage 53.27 V)
        ("battery", 259, [5327], 53.27),
        # int16 scale 10 negative temperature
        ("battery", 262, [0x10000 - 55], -5.5),
        # int32 scale 1 positive power
        ("battery", 256, [0x0001, 0x0000], 65536),
        # settings uint16 scale 10 percent
        ("settings", 2901, [200], 20.0),
        # string6: VRM portal id, NUL-padded
        ("system", 800, [0x6331, 0x6630, 0x6132, 0x6233, 0x0000, 0x0000], "c1f0a2b3"),
        # string4: cell id "C7"
        ("battery", 1306, [0x4337, 0, 0, 0], "C7"),
        # Dynamic ESS: uint16 scale 0.1, the charge rate in units of 10 W (2390 W)
        ("system", 5403, [239], 2390.0),
        # Dynamic ESS target SoC, uint16 %
        ("system", 5407, [95], 95),
        # Dynamic ESS slot 0 Start: int32 Unix seconds (2025-11-09 02:30 UTC)
        ("settings", 5428, [0x690F, 0xFCA8], 1762655400),
        # slot 0 Duration: uint16 seconds; Strategy at 5430 (v1.0.101)
        ("settings", 5425, [8100], 8100),
        ("settings", 5430, [1], 1),
    ],
)
def test_when_register_words_decoded_then_value_matches_table(
    service: str, address: int, words: list[int], expected: object
) -> None:
    value = decode_register(reg(service, address), words)
    if isinstance(expected, float):
        assert isinstance(value, float)
        assert value == pytest.approx(expected, abs=1e-9)
    else:
        assert value == expected


def test_when_scale_is_0_01_then_no_float_artefacts() -> None:
    assert decode_register(reg("battery", 303), [7]) == 700.0
    assert decode_register(reg("battery", 289), [3]) == 300.0


def test_when_register_is_reserved_then_it_decodes_to_nothing() -> None:
    assert decode_register(reg("system", 827), [0xFFFF]) is None


# dbus_modbustcp clamps an integer value out of its register's range: at MAX from v1.0.85, at MAX-1 from
# v1.0.96; the lower clamp is the type's MIN in both. Every one of those words is "no value", never data.
CLAMPED = [
    # (service, address, words, convention)
    ("system", 843, [0xFFFF], "uint16 MAX"),
    ("system", 843, [0xFFFE], "uint16 MAX-1"),
    ("battery", 259, [0xFFFE], "uint16 MAX-1, scale 100 (not 655.34 V)"),
    ("system", 846, [0xFFFE], "uint16 MAX-1, scale 0.01 (not 6,553,400 s)"),
    ("system", 842, [0x7FFF], "int16 MAX"),
    ("system", 842, [0x7FFE], "int16 MAX-1"),
    ("battery", 261, [0x7FFE], "int16 MAX-1, scale 10 (not 3276.6 A)"),
    ("system", 842, [0x8000], "int16 MIN"),
    ("system", 834, [0xFFFF, 0xFFFF], "uint32 MAX"),
    ("system", 834, [0xFFFF, 0xFFFE], "uint32 MAX-1"),
    ("system", 870, [0x7FFF, 0xFFFF], "int32 MAX"),
    ("system", 870, [0x7FFF, 0xFFFE], "int32 MAX-1"),
    ("system", 870, [0x8000, 0x0000], "int32 MIN"),
    ("system", 830, [0xFFFF] * 4, "uint64 MAX"),
    ("system", 830, [0xFFFF, 0xFFFF, 0xFFFF, 0xFFFE], "uint64 MAX-1"),
]


@pytest.mark.parametrize(("service", "address", "words", "convention"), CLAMPED, ids=[c[3] for c in CLAMPED])
def test_when_integer_register_at_either_clamp_then_saturated(
    service: str, address: int, words: list[int], convention: str
) -> None:
    assert decode_register(reg(service, address), words) is Saturated.LIMIT, convention


# One step inside each clamp is a real reading.
INSIDE = [
    ("system", 843, [0xFFFD], 65533),
    ("system", 842, [0x7FFD], 32765),
    ("system", 842, [0x8001], -32767),
    ("system", 870, [0x7FFF, 0xFFFD], 2147483645),
    ("system", 870, [0x8000, 0x0001], -2147483647),
]


@pytest.mark.parametrize(("service", "address", "words", "expected"), INSIDE)
def test_when_integer_register_just_inside_the_clamp_then_a_value(
    service: str, address: int, words: list[int], expected: int
) -> None:
    assert decode_register(reg(service, address), words) == expected


@pytest.mark.parametrize(
    ("service", "address"),
    [
        ("battery", 259),
        ("system", 840),
        ("battery", 309),
        ("battery", 304),
        ("battery", 1289),
        ("battery", 1290),
        ("battery", 303),  # TimeToGo 0: not discharging ("not applicable"), never 0 s
        ("system", 846),  # /Dc/Battery/TimeToGo, the same
    ],
)
def test_when_zero_read_for_quantity_that_cannot_be_zero_then_invalid(service: str, address: int) -> None:
    assert decode_register(reg(service, address), [0]) is Invalid.NULL


@pytest.mark.parametrize(
    ("service", "address"), [("battery", 261), ("battery", 262), ("system", 842), ("battery", 265)]
)
def test_when_zero_read_for_quantity_that_can_be_zero_then_zero(service: str, address: int) -> None:
    assert decode_register(reg(service, address), [0]) == 0


def test_when_word_count_wrong_then_value_error() -> None:
    with pytest.raises(ValueError, match="needs 2 words"):
        decode_register(reg("battery", 256), [1])


def _encode(register: tables.Register, value: float) -> list[int]:
    """Independent encoder (the GX side): register = round(value * scale), big-endian words."""
    raw = round(value * register.scale)
    bits = 16 * register.words
    raw &= (1 << bits) - 1
    return [(raw >> (16 * (register.words - 1 - i))) & 0xFFFF for i in range(register.words)]


NUMERIC = [r for r in tables.registers() if r.type not in ("reserved", "string") and "#" not in r.dbus_path]


@pytest.mark.parametrize("register", NUMERIC, ids=lambda r: f"{r.service}-{r.address}")
def test_when_every_numeric_register_round_trips_then_value_is_recovered(register: tables.Register) -> None:
    # a plausible value with the register's resolution and sign
    signed = register.type.startswith("int") or register.scale < 0
    value = (-1 if signed else 1) * 37 / abs(register.scale) if abs(register.scale) >= 1 else 3700.0
    words = _encode(register, value)
    decoded = decode_register(register, words)
    assert isinstance(decoded, int | float)
    assert math.isclose(decoded, value, rel_tol=1e-9, abs_tol=1e-9)


def test_when_every_string_register_decoded_then_text_recovered() -> None:
    strings = [r for r in tables.registers() if r.type == "string"]
    assert strings
    for register in strings:
        text = "AB12"
        data = text.encode().ljust(2 * register.words, b"\x00")
        words = [int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2)]
        assert decode_register(register, words) == text


def test_when_block_decoded_then_each_path_gets_its_value_and_reserved_skipped() -> None:
    registers = tables.registers_for("system")
    words = [0] * 120
    words[840 - 800] = 532
    words[842 - 800] = 0x10000 - 100
    words[827 - 800] = 0xFFFF
    out = decode_block(registers, BlockRead(800, tuple(words)))
    assert out["/Dc/Battery/Voltage"] == pytest.approx(53.2)
    assert out["/Dc/Battery/Power"] == -100
    assert "" not in out
    # the 32-bit register is the plain one: its '#16' copy does not override it, whatever the order
    words[908 - 800 : 910 - 800] = [0, 50000]
    words[820 - 800] = 4000
    out = decode_block(registers, BlockRead(800, tuple(words)))
    assert out["/Ac/Grid/L1/Power"] == 50000


def test_when_a_block_holds_only_the_16_bit_copy_then_it_gives_the_value() -> None:
    # older firmware (before dbus_modbustcp v1.0.85) has no 908: the poller reads 820 on its own
    out = decode_block(tables.registers_for("system"), BlockRead(820, (0x10000 - 1500,)))
    assert out == {"/Ac/Grid/L1/Power": -1500}


def test_when_register_outside_block_then_not_decoded() -> None:
    out = decode_block(tables.registers_for("battery"), BlockRead(256, tuple([100] * 10)))
    assert "/Dc/0/Voltage" in out
    assert "/Soc" not in out  # 266 is outside 256..265
