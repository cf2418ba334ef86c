"""A deterministic Cerbo GX simulator: BESS physics, Modbus-TCP server, MQTT publisher, fault knobs."""
