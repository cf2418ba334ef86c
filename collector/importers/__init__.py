"""Importers of recorded history (Home Assistant, VRM, generic CSV, Pylontech BMS logs) into the schema.

Parsers are pure: they iterate the rows of a file and yield `Sample`s, `Skipped` (an expected gap, e.g.
Home Assistant's `unavailable`) or `BadRow` (counted and reported with its line number); they never raise
on a row. `collector.importers.landing` sends the samples through the live collector's durable buffer.
"""
