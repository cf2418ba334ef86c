"""GX sources: the Modbus-TCP poller and the MQTT client. Both run on their own thread and hand
`collector.observation` events to a sink (the grid's `apply`); neither can write to the GX."""
