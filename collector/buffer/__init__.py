"""The durable on-disk buffer between the 1 Hz grid and the InfluxDB writer."""

from collector.buffer.sqlite import Batch, BufferStats, DiskBuffer

__all__ = ["Batch", "BufferStats", "DiskBuffer"]
