"""Pure check of a crontab line (5 fields, or 6 with seconds first), so that a bad schedule is a config
error at load, not a crash when the service schedules it. Day of week: 0-7 (0 and 7 = Sunday) or
sun..sat, as crontab(5) has it; month: 1-12 or jan..dec."""

from __future__ import annotations

import re

MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
# name, lowest, highest, names (value of the first name = lowest)
_FIELDS = (
    ("second", 0, 59, ()),
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day of month", 1, 31, ()),
    ("month", 1, 12, MONTHS),
    ("day of week", 0, 7, DAYS),
)
_ITEM = re.compile(r"^(\*|[a-z0-9]+(?:-[a-z0-9]+)?)(?:/(\d+))?$")


def _value(text: str, low: int, high: int, names: tuple[str, ...]) -> int:
    if text in names:
        return low + names.index(text)
    if not text.isdigit():
        raise ValueError(f"{text!r} is not a number{' or a name (' + '/'.join(names) + ')' if names else ''}")
    value = int(text)
    if not low <= value <= high:
        raise ValueError(f"{value} is out of range {low}-{high}")
    return value


def _check_field(text: str, name: str, low: int, high: int, names: tuple[str, ...]) -> None:
    for item in text.lower().split(","):
        match = _ITEM.match(item)
        if not match:
            raise ValueError(f"{name} field {text!r}: {item!r} is not *, N, N-M or a step like */N")
        span, step = match.groups()
        if step is not None and int(step) == 0:
            raise ValueError(f"{name} field {text!r}: a step of 0")
        if span == "*":
            continue
        try:
            bounds = [_value(part, low, high, names) for part in span.split("-")]
        except ValueError as exc:
            raise ValueError(f"{name} field {text!r}: {exc}") from None
        if len(bounds) == 2 and bounds[0] > bounds[1]:
            raise ValueError(f"{name} field {text!r}: range {span} runs backwards")


def cron_problem(expr: str) -> str | None:
    """One line saying what is wrong with the crontab line, or None when it is valid (empty = off)."""
    fields = expr.split()
    if not fields:
        return None
    if len(fields) not in (5, 6):
        return f"{expr!r} has {len(fields)} fields; a crontab line has 5 (minute hour day month weekday) or 6"
    specs = _FIELDS if len(fields) == 6 else _FIELDS[1:]
    try:
        for text, (name, low, high, names) in zip(fields, specs, strict=True):
            _check_field(text, name, low, high, names)
    except ValueError as exc:
        return f"{expr!r}: {exc}"
    return None
