"""Which registers each dbus_modbustcp release serves: collector/gx/firmware.csv (generated data).

`layout(release)` is the register list the simulated Modbus server serves for `--firmware RELEASE`; the
table is generated from Victron's attributes.csv at each release tag by deploy/gen_firmware_table.py and
is data, not code paths: a new release is new rows.
"""

from __future__ import annotations

from functools import cache

from collector.gx import tables
from collector.gx.tables import Register


def _version(tag: str) -> tuple[int, ...]:
    return tuple(int(p) for p in tag.lstrip("v").split("."))


@cache
def _table() -> tuple[tuple[Register, tuple[str, ...]], ...]:
    rows = tables._rows("firmware.csv")  # the package's own table reader
    return tuple((tables.parse_register(row), tuple(row["releases"].split())) for row in rows)


@cache
def releases() -> tuple[str, ...]:
    """The releases in the table, oldest first."""
    return tuple(sorted({tag for _, tags in _table() for tag in tags}, key=_version))


@cache
def layout(release: str) -> tuple[Register, ...]:
    """The registers `release` serves (sorted by service and address; may overlap on old releases)."""
    if release not in releases():
        raise ValueError(f"unknown firmware {release!r}; known: {', '.join(releases())}")
    return tuple(sorted((reg for reg, tags in _table() if release in tags), key=lambda r: (r.service, r.address)))
