"""Generate collector/gx/firmware.csv: which registers each dbus_modbustcp release serves (data for the simulator).

Usage: python -m deploy.gen_firmware_table v1.0.42=FILE v1.0.77=FILE ... [--check]
where FILE is attributes.csv of github.com/victronenergy/dbus_modbustcp at that tag (`git show TAG:attributes.csv`).

Only the services registers.csv maps are kept (system, settings, battery, and the inverter/charger, solar
charger and meter services). A row that registers.csv
also has (same service, address, D-Bus path and width) is written as registers.csv spells it (its
'#variant' path, scale and access), so the simulator fills it from the same truth; any other row is
written from Victron's list. `reserved[N]` becomes N one-word reserved rows; an `INTERNAL` register
(computed by the server itself: 830 date and time, 834 firmware version, 777 solar charger PV current;
v1.0.42 leaves that type blank) takes its type and path from registers.csv. Identical rows of several
releases become one row listing those releases. The conversion is pure; only main() touches files.
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

from collector.gx import tables

REPO_ROOT = Path(__file__).resolve().parent.parent
TABLE_PATH = REPO_ROOT / "collector" / "gx" / "firmware.csv"
KEPT = ("system", "settings", "battery", "vebus", "multi", "acsystem", "solarcharger", "grid", "acload", "pvinverter")
SERVICES = {f"com.victronenergy.{s}": s for s in KEPT}
COLUMNS = ("service", "address", "type", "scale", "unit", "dbus_path", "access", "releases")
HEADER = """\
# Registers each dbus_modbustcp release serves, for the services the simulator serves (generated data:
# python -m deploy.gen_firmware_table; source: attributes.csv of github.com/victronenergy/dbus_modbustcp at
# each tag, see docs/simulator.md "Firmware releases"). Format of registers.csv, plus `releases`: the tags
# (space-separated) serving exactly this row. Older releases may list overlapping registers; the server
# then refuses a read that runs from one into the next (see docs/collector.md, "Older firmware").
"""

Row = tuple[str, int, str, str, str, str, str]  # service, address, type, scale, unit, dbus_path, access


def _version(tag: str) -> tuple[int, ...]:
    return tuple(int(p) for p in tag.lstrip("v").split("."))


def _size(victron_type: str) -> int | None:
    """The word count in a `name[N]` type, or None without one."""
    return int(victron_type.split("[", 1)[1].rstrip("]")) if "[" in victron_type else None


def convert(lines: Iterable[Sequence[str]]) -> list[Row]:
    """One release's attributes.csv rows -> rows in registers.csv's format (kept services only)."""
    ours = {(r.service, r.address): r for r in tables.registers()}
    out: list[Row] = []
    for fields in lines:
        if len(fields) < 8 or fields[0] not in SERVICES:
            continue
        service, path, vtype, address = SERVICES[fields[0]], fields[1], fields[5], int(fields[4])
        # a blank (or 0) scale is 1 on the GX (mappings.cpp, DBusModbusData: `if (_scaleFactor == 0)`)
        scale, access = fields[6].strip() or "1", "w" if fields[7].strip().upper() == "W" else "r"
        if vtype.startswith("reserved"):
            out.extend((service, address + k, "reserved", "1", "", "", "r") for k in range(_size(vtype) or 1))
            continue
        known = ours.get((service, address))
        if vtype.startswith("INTERNAL") or not vtype:
            if known is None:
                raise ValueError(f"{service} {address}: INTERNAL register not in registers.csv")
        else:
            our_type = "string" + str(_size(vtype)) if vtype.startswith("string") else vtype
            words = tables.parse_register(
                {"service": service, "address": str(address), "type": our_type, "scale": "1", "unit": ""}
                | {"dbus_path": path, "access": access}
            ).words
            if known is None or known.path != path or known.words != words:
                out.append((service, address, our_type, scale, "", path, access))
                continue
        raw_type = known.type if known.type != "string" else f"string{known.words}"
        scale_text = f"{known.scale:g}"
        out.append(
            (service, address, raw_type, scale_text, known.unit, known.dbus_path, "w" if known.writable else "r")
        )
    return out


def build(releases: dict[str, list[Row]]) -> str:
    """The table text: one line per distinct row, with the releases that serve it."""
    served: dict[Row, list[str]] = {}
    for tag in sorted(releases, key=_version):
        for row in releases[tag]:
            served.setdefault(row, []).append(tag)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in sorted(served, key=lambda r: (r[0], r[1], _version(served[r][0]))):
        writer.writerow([*row, " ".join(served[row])])
    return HEADER + buf.getvalue()


def main(argv: Sequence[str] | None = None) -> int:
    """Write (or --check) collector/gx/firmware.csv from TAG=FILE arguments."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("lists", nargs="+", metavar="TAG=FILE", help="attributes.csv of dbus_modbustcp at TAG")
    parser.add_argument("--check", action="store_true", help="exit 1 if the committed table differs")
    args = parser.parse_args(argv)
    releases: dict[str, list[Row]] = {}
    for item in args.lists:
        tag, _, name = item.partition("=")
        if not tag.startswith("v") or not name:
            parser.error(f"expected TAG=FILE, got {item!r}")
        with Path(name).open(encoding="utf-8", newline="") as handle:
            releases[tag] = convert(csv.reader(handle))
    text = build(releases)
    if args.check:
        same = TABLE_PATH.exists() and TABLE_PATH.read_text(encoding="utf-8") == text
        print("up to date" if same else f"{TABLE_PATH} is out of date: regenerate it")
        return 0 if same else 1
    TABLE_PATH.write_text(text, encoding="utf-8")
    print(f"wrote {TABLE_PATH} ({len(text.splitlines())} lines, releases {' '.join(sorted(releases, key=_version))})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
