"""The InfluxDB sink: drains the durable buffer to InfluxDB."""

from collector.sink.writer import Writer, WriterStats

__all__ = ["Writer", "WriterStats"]
