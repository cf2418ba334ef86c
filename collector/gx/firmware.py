"""Which registers each dbus_modbustcp release serves: collector/gx/firmware.csv (generated data).

`layout(release)` is the register list the simulated Modbus server serves for `--firmware RELEASE`; the
table is generated from Victron's attributes.csv at each release tag by deploy/gen_firmware_table.py and
is data, not code paths: a new release is new rows.

The collector uses it to tell which release a GX may run from what the GX served while its gaps were
learned (`consistent_releases`), and then not to trust a register that such a release serves with another
meaning (`distrusted`: e.g. battery 1322-1327 before v1.0.95, where the SmartLithium errors sit 3 lower).
Probing alone cannot see that: the address answers either way.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import cache

from collector.gx import tables
from collector.gx.addressmap import AddressMap
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


@cache
def address_map(release: str) -> AddressMap:
    """The release's register map, as its server walks it."""
    return AddressMap.of(layout(release))


def consistent_releases(observed: Mapping[tuple[int, int], bool]) -> tuple[str, ...]:
    """The known releases whose server would have answered every observed read (address, count) the same
    way: served (True) or exception 2 (False). Empty when nothing was observed or no release fits."""
    if not observed:
        return ()
    return tuple(
        release
        for release in releases()
        if all((address_map(release).walk(a, n) is not None) == ok for (a, n), ok in observed.items())
    )


def distrusted(registers: Iterable[Register], candidates: Iterable[str]) -> frozenset[int]:
    """Addresses of our registers (with a D-Bus path) that one of the candidate releases serves with another
    meaning: another path or width starts there, or the address lies inside another of its registers."""
    out: set[int] = set()
    for release in candidates:
        amap = address_map(release)
        for reg in registers:
            if not reg.dbus_path:
                continue
            there = amap.entries.get(reg.address)
            if there is None:
                if amap.start(reg.address) is not None:  # inside another register of that release
                    out.add(reg.address)
            elif there.path != reg.path or there.words != reg.words:
                out.add(reg.address)
    return frozenset(out)
