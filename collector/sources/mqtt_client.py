"""The paho client the MQTT source uses: publish guarded at the client itself, TLS from [gx].

`GuardedMqttClient.publish` is the one way out: every topic/payload goes through
`mqtt_protocol.check_publish` (R/<portal>/keepalive and empty read requests only; never W/), retained
publishes are refused, and so is a last-will message (the broker would publish it for us).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from collector.config import GxSettings
from collector.sources.mqtt_protocol import PublishRefused, check_publish
from collector.sources.mqtt_tls import tls_context

CONNECT_TIMEOUT_S = 5.0


def _as_bytes(payload: Any) -> bytes:
    if payload is None:
        return b""
    if isinstance(payload, bytes | bytearray):
        return bytes(payload)
    if isinstance(payload, str):
        return payload.encode("utf-8")
    raise PublishRefused(f"refusing to publish a {type(payload).__name__} payload")


class GuardedMqttClient(mqtt.Client):
    """A paho client that can only publish keepalives and read requests for `guard_portal`."""

    guard_portal: str = ""

    def publish(
        self, topic: str, payload: Any = None, qos: int = 0, retain: bool = False, properties: Any = None
    ) -> mqtt.MQTTMessageInfo:
        """Publish after the guard: anything but R/<portal>/keepalive or a read request raises."""
        data = _as_bytes(payload)
        if retain:
            raise PublishRefused(f"refusing a retained publish to {topic!r}")
        check_publish(self.guard_portal, topic, data)
        return super().publish(topic, data, qos=qos, retain=False, properties=properties)

    def will_set(self, *args: Any, **kwargs: Any) -> None:
        """Refused: a last will would make the broker publish on our behalf."""
        raise PublishRefused("refusing to set a last-will message")


ClientFactory = Callable[[GxSettings, str], mqtt.Client]


def default_client_factory(gx: GxSettings, client_id: str) -> mqtt.Client:
    """A guarded MQTT 3.1.1 client with credentials and, when configured, TLS (CA and/or pin)."""
    client = GuardedMqttClient(
        CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True, protocol=MQTTProtocolVersion.MQTTv311
    )
    password = gx.mqtt_password.get_secret_value()
    client.username_pw_set(gx.mqtt_username or "bess-edge", password or None)
    client.connect_timeout = CONNECT_TIMEOUT_S
    if gx.mqtt_tls:
        context, check_hostname = tls_context(gx)
        client.tls_set_context(context)
        if not check_hostname:
            client.tls_insecure_set(True)  # the pin replaces the name check
    return client
