"""Finding GX devices on the LAN the way Venus OS announces itself: UPnP/SSDP.

A GX answers an SSDP M-SEARCH for `urn:schemas-upnp-org:device:Basic:1` with a USN starting
`uuid:com.victronenergy.ccgx` and a LOCATION whose device description carries the VRM portal id as
`X_VrmPortalId` (namespace prefix `ve:`) beside friendlyName, modelName and serialNumber. That is what
Victron's own loader looks for (victronenergy/venus-influx-loader, src/server/upnp.ts at commit bb95d4e).
Venus also publishes an mDNS service `_victron-mqtt._tcp` named `venus-<serial>` on port 1883
(victronenergy/meta-victronenergy, meta-venus/recipes-connectivity/avahi/files/victron-mqtt.service.in at
commit 0e1aaed); that one carries no portal id, so bess-edge searches over SSDP.

Pure parsing plus one bounded search: the M-SEARCH goes to one address (the SSDP multicast group by
default), answers are read for `wait_s`, each description is fetched once with a short timeout.
"""

from __future__ import annotations

import socket
import time
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass

SSDP_GROUP = ("239.255.255.250", 1900)
SEARCH_TARGET = "urn:schemas-upnp-org:device:Basic:1"
GX_USN_PREFIX = "uuid:com.victronenergy.ccgx"
MAX_DESCRIPTION_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class FoundGx:
    """One GX that answered."""

    address: str  # where the answer came from
    portal_id: str
    name: str = ""
    model: str = ""
    serial: str = ""


def m_search(target: str = SEARCH_TARGET, mx_s: int = 2) -> bytes:
    """The M-SEARCH request."""
    return (
        "M-SEARCH * HTTP/1.1\r\n"
        f"HOST: {SSDP_GROUP[0]}:{SSDP_GROUP[1]}\r\n"
        'MAN: "ssdp:discover"\r\n'
        f"MX: {mx_s}\r\n"
        f"ST: {target}\r\n\r\n"
    ).encode()


def parse_response(data: bytes) -> dict[str, str] | None:
    """The headers of an SSDP answer (names upper-cased), or None when it is not an HTTP 200 answer."""
    try:
        text = data.decode("utf-8", errors="replace")
    except ValueError:
        return None
    lines = text.split("\r\n") if "\r\n" in text else text.split("\n")
    if not lines or not lines[0].upper().startswith("HTTP/1.1 200"):
        return None
    headers = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().upper()] = value.strip()
    return headers


def is_gx(headers: dict[str, str]) -> bool:
    """Whether an answer comes from a GX (its USN) and says where its description is."""
    return headers.get("USN", "").startswith(GX_USN_PREFIX) and bool(headers.get("LOCATION"))


def parse_description(xml_text: bytes, address: str) -> FoundGx | None:
    """The device description: portal id (X_VrmPortalId, any namespace), names; None without a portal id."""
    try:
        root = ET.fromstring(xml_text)
    except ET.ParseError:
        return None
    values: dict[str, str] = {}
    for element in root.iter():
        local = element.tag.rsplit("}", 1)[-1].rsplit(":", 1)[-1]
        if local in ("X_VrmPortalId", "friendlyName", "modelName", "serialNumber") and local not in values:
            values[local] = (element.text or "").strip()
    portal = values.get("X_VrmPortalId", "")
    if not portal:
        return None
    return FoundGx(
        address, portal, values.get("friendlyName", ""), values.get("modelName", ""), values.get("serialNumber", "")
    )


def fetch_description(url: str, timeout_s: float) -> bytes:
    """GET the description (http only, at most MAX_DESCRIPTION_BYTES)."""
    if not url.startswith("http://"):
        raise ValueError(f"not an http:// description URL: {url!r}")
    with urllib.request.urlopen(url, timeout=timeout_s) as resp:
        body: bytes = resp.read(MAX_DESCRIPTION_BYTES + 1)
    if len(body) > MAX_DESCRIPTION_BYTES:
        raise ValueError("description too large")
    return body


def search(
    to: tuple[str, int] = SSDP_GROUP,
    wait_s: float = 3.0,
    fetch: Callable[[str, float], bytes] = fetch_description,
    log: Callable[[str], None] = lambda _line: None,
) -> list[FoundGx]:
    """Send M-SEARCH to `to` (twice: UDP may drop one), collect the GX answers for `wait_s`, one per portal."""
    found: dict[str, FoundGx] = {}
    seen_locations: set[str] = set()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP) as sock:
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 2)
        sock.bind(("127.0.0.1" if to[0].startswith("127.") else "", 0))
        request = m_search()
        sock.sendto(request, to)
        end = time.monotonic() + wait_s
        resent = False
        while (left := end - time.monotonic()) > 0:
            if not resent and left < wait_s / 2:
                sock.sendto(request, to)
                resent = True
            sock.settimeout(min(left, 0.25))
            try:
                data, (address, _port) = sock.recvfrom(8192)
            except TimeoutError:
                continue
            headers = parse_response(data)
            if headers is None or not is_gx(headers) or headers["LOCATION"] in seen_locations:
                continue
            seen_locations.add(headers["LOCATION"])
            try:
                gx = parse_description(fetch(headers["LOCATION"], 2.0), address)
            except (OSError, ValueError) as exc:
                log(f"{address}: cannot read its description at {headers['LOCATION']}: {exc}")
                continue
            if gx is not None:
                found.setdefault(gx.portal_id, gx)
    return sorted(found.values(), key=lambda g: (g.address, g.portal_id))
