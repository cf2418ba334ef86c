"""bess-edge collector: Cerbo GX (Modbus-TCP + MQTT) -> 1 Hz grid -> durable buffer -> InfluxDB."""

__version__ = "0.1.0"
