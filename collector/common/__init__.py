"""Code shared by the collector and the forecaster: config schema, logging, the InfluxDB edge, systemd."""
