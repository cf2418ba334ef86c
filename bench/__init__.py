"""Benchmarks: one command each (make bench-collector, make bench-forecaster)."""
