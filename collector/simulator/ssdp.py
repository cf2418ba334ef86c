"""The simulated GX's SSDP announcer: answers M-SEARCH the way Venus OS does (see collector/ssdp.py).

It listens on one UDP address (loopback by default; it does not join the multicast group, so a search must
be sent to it directly) and serves the device description, with the portal id as `ve:X_VrmPortalId`, over
HTTP on the same host. Threads; start() returns once both sockets are bound.
"""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from collector.ssdp import GX_USN_PREFIX, SEARCH_TARGET


def description_xml(portal_id: str, name: str, serial: str) -> bytes:
    """The UPnP device description a GX serves."""
    return (
        '<?xml version="1.0"?>\n'
        '<root xmlns="urn:schemas-upnp-org:device-1-0" xmlns:ve="http://www.victronenergy.com/upnp">\n'
        "<specVersion><major>1</major><minor>0</minor></specVersion>\n"
        f"<device><deviceType>{SEARCH_TARGET}</deviceType><friendlyName>{name}</friendlyName>"
        f"<manufacturer>Victron Energy</manufacturer><modelName>{name}</modelName>"
        f"<serialNumber>{serial}</serialNumber><UDN>{GX_USN_PREFIX}-{serial}</UDN>"
        f"<ve:X_VrmPortalId>{portal_id}</ve:X_VrmPortalId><ve:X_MqttOnLan>1</ve:X_MqttOnLan></device>\n"
        "</root>\n"
    ).encode()


class SsdpAnnouncer:
    """Answers SSDP searches for a GX with `portal_id`; `port` 0 picks a free UDP port (see .port)."""

    def __init__(self, portal_id: str, host: str = "127.0.0.1", port: int = 0, name: str = "Cerbo GX") -> None:
        self.portal_id, self.host, self.name = portal_id, host, name
        self.serial = f"HQ{portal_id[-8:].upper()}"
        self._udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
        self._udp.bind((host, port))
        self._udp.settimeout(0.2)
        self.port = int(self._udp.getsockname()[1])
        body = description_xml(portal_id, name, self.serial)

        class _Description(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200 if self.path == "/description.xml" else 404)
                self.send_header("Content-Type", "text/xml")
                self.end_headers()
                if self.path == "/description.xml":
                    self.wfile.write(body)

            def log_message(self, *_args: Any) -> None:
                return

        self._http = ThreadingHTTPServer((host, 0), _Description)
        self.location = f"http://{host}:{self._http.server_address[1]}/description.xml"
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.searches = 0

    def answer(self, request: bytes) -> bytes | None:
        """The answer to one datagram, or None when it is not a search this GX answers."""
        text = request.decode("utf-8", errors="replace")
        if not text.startswith("M-SEARCH"):
            return None
        target = next((ln.split(":", 1)[1].strip() for ln in text.split("\r\n") if ln.upper().startswith("ST:")), "")
        if target not in (SEARCH_TARGET, "ssdp:all", "upnp:rootdevice"):
            return None
        return (
            "HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age=1800\r\nEXT:\r\n"
            f"LOCATION: {self.location}\r\nSERVER: Linux UPnP/1.0 bess-edge-simulator\r\n"
            f"ST: {target}\r\nUSN: {GX_USN_PREFIX}-{self.serial}::{target}\r\n\r\n"
        ).encode()

    def _serve_udp(self) -> None:
        while not self._stop.is_set():
            try:
                data, sender = self._udp.recvfrom(4096)
            except (TimeoutError, OSError):
                continue
            reply = self.answer(data)
            if reply is not None:
                self.searches += 1
                self._udp.sendto(reply, sender)

    def start(self) -> SsdpAnnouncer:
        """Serve on background threads."""
        for target, name in ((self._serve_udp, "sim-ssdp"), (self._http.serve_forever, "sim-ssdp-http")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        """Stop both servers and close their sockets."""
        self._stop.set()
        self._http.shutdown()
        self._http.server_close()
        for thread in self._threads:
            thread.join(2.0)
        self._udp.close()

    def __enter__(self) -> SsdpAnnouncer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
