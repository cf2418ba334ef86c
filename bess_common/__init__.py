"""Code shared by the collector and the forecaster; imports neither of them (docs/architecture.md)."""
