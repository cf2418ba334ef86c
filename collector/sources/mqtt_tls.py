"""TLS for the GX broker (8883): a custom CA (the GX's self-signed one) and/or a pinned certificate.

Pinning compares the SHA-256 of the peer's DER certificate right after the handshake, inside the
socket's `do_handshake`, before paho sends a single MQTT byte; a mismatch closes the socket and fails
the connection. With a pin the host name is not checked (the GX certificate's name rarely matches).
"""

from __future__ import annotations

import hashlib
import hmac
import ssl

from collector.config import GxSettings


class PinMismatch(ssl.SSLError):
    """The broker's certificate is not the pinned one."""


def normalise_fingerprint(text: str) -> str:
    """'AA:bb:..' or 'aabb..' -> 'aabb..' (64 lowercase hex digits), or ValueError."""
    hexdigits = text.replace(":", "").replace(" ", "").lower()
    if len(hexdigits) != 64 or any(c not in "0123456789abcdef" for c in hexdigits):
        raise ValueError("gx.mqtt_cert_sha256 must be a SHA-256 fingerprint (64 hex digits)")
    return hexdigits


def certificate_sha256(der: bytes) -> str:
    """Lowercase hex SHA-256 of a DER certificate."""
    return hashlib.sha256(der).hexdigest()


class PinnedSSLSocket(ssl.SSLSocket):
    """An SSLSocket that refuses a peer whose certificate does not hash to `expected_sha256`."""

    expected_sha256 = ""

    def do_handshake(self, block: bool = False) -> None:
        """Handshake, then check the pin before anything else is sent."""
        super().do_handshake(block)
        der = self.getpeercert(binary_form=True) or b""
        seen = certificate_sha256(der)
        if not hmac.compare_digest(seen, self.expected_sha256):
            self.close()
            raise PinMismatch(f"broker certificate sha256 {seen} does not match the pinned fingerprint")


def tls_context(gx: GxSettings) -> tuple[ssl.SSLContext, bool]:
    """The SSL context for the broker and whether the host name is checked."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    if gx.mqtt_ca_file is not None:
        context.load_verify_locations(cafile=str(gx.mqtt_ca_file))
    if not gx.mqtt_cert_sha256:
        return context, True
    pin = normalise_fingerprint(gx.mqtt_cert_sha256)
    context.check_hostname = False
    if gx.mqtt_ca_file is None:
        context.verify_mode = ssl.CERT_NONE  # the pin is the trust anchor
    context.sslsocket_class = type("GxPinnedSSLSocket", (PinnedSSLSocket,), {"expected_sha256": pin})
    return context, False
