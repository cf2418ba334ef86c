"""bess-edge forecaster: Chronos-2 (base and site-fine-tuned) on rolling windows read from InfluxDB."""

__version__ = "0.1.0"
