"""`bess-collector simulate`: run the simulated Cerbo GX live, or backfill simulated history into InfluxDB.

Live:     bess-collector simulate --modbus-port P --mqtt-host H --mqtt-port Q --seed N [--portal-id ID]
          [--firmware v1.0.42|v1.0.77|v1.0.94|v1.0.101]  (the Modbus register list of that release)
          [--pv-forecast-port P [--pv-forecast-tz ZONE]]  (its PV forecast, Forecast.Solar's format)
Backfill: bess-collector simulate --backfill --start ISO --end ISO [--step-s 1] --influx-url URL
          --database DB [--site S] --seed N [--pv-forecast-every-s 3600] [--pv-forecast-horizon-h 48]
          (the 1 Hz rows at --step-s, the gx_plan snapshots and the pv_forecast issues)
"""

from __future__ import annotations

import argparse
import datetime as dt
import heapq
import signal
import threading
import time
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bess_common.config import InfluxSettings
from bess_common.errors import BessError
from bess_common.influx import InfluxClient
from bess_common.logs import get_logger, setup_logging
from collector.gx.firmware import releases
from collector.simulator.backfill import BackfillStatus, write_batches
from collector.simulator.bms import BMS_PROFILES, DEFAULT_BMS
from collector.simulator.devices import INVERTERS
from collector.simulator.gx import GxSimulator
from collector.simulator.history import history_samples, plan_samples
from collector.simulator.physics import BessPhysics
from collector.simulator.pvforecast import SimPvForecast, pv_forecast_samples
from collector.simulator.pvserver import PvForecastServer
from collector.simulator.truth import DEFAULT_PORTAL_ID

HELP = "Run a simulated Cerbo GX (Modbus-TCP + MQTT) or backfill simulated history into InfluxDB"


def configure(parser: argparse.ArgumentParser) -> None:
    """Arguments of simulate."""
    parser.add_argument("--seed", type=int, default=0, help="physics seed (same seed, same numbers)")
    parser.add_argument("--cells", type=int, default=16, help="cells in series")
    parser.add_argument("--portal-id", default=DEFAULT_PORTAL_ID, help="VRM portal id (MQTT topics, /Serial)")
    parser.add_argument(
        "--bms",
        default=DEFAULT_BMS,
        choices=list(BMS_PROFILES),
        help="the BMS family behind the GX, publishing its cells as it really does (docs/schema.md)",
    )
    parser.add_argument(
        "--inverter",
        default="vebus",
        choices=list(INVERTERS),
        help="the inverter/charger: a MultiPlus-II on VE.Bus (vebus/276) or a Multi RS (multi/0)",
    )
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    live = parser.add_argument_group("live")
    live.add_argument("--modbus-port", type=int, default=None, help="Modbus-TCP port (0 = any free; omit = off)")
    live.add_argument("--modbus-host", default="127.0.0.1", help="address the Modbus server listens on")
    live.add_argument("--mqtt-host", default="127.0.0.1", help="MQTT broker to publish on")
    live.add_argument("--mqtt-port", type=int, default=None, help="MQTT broker port (omit = no MQTT)")
    live.add_argument(
        "--modbus-read-write",
        action="store_true",
        help="Settings/ModbusServer/ReadWrite = 1: accept writes to writable registers (default 0: refuse all)",
    )
    live.add_argument(
        "--pv-forecast-port",
        type=int,
        default=None,
        help="also serve its PV forecast in Forecast.Solar's format on this port (0 = any free; omit = off)",
    )
    live.add_argument(
        "--pv-forecast-tz", default="UTC", help="time zone of the forecast's local timestamps (e.g. Europe/Berlin)"
    )
    live.add_argument("--keepalive-timeout-s", type=float, default=60.0, help="Venus keepalive timeout")
    live.add_argument(
        "--firmware",
        choices=releases(),
        default=None,
        help="serve the Modbus registers of this dbus_modbustcp release (default: registers.csv, the current one)",
    )
    back = parser.add_argument_group("backfill")
    back.add_argument("--backfill", action="store_true", help="write history instead of running live")
    back.add_argument("--start", help="first second, ISO 8601 (UTC if no offset)")
    back.add_argument("--end", help="end (exclusive), ISO 8601 (UTC if no offset)")
    back.add_argument("--step-s", type=int, default=1, help="seconds between rows")
    back.add_argument("--influx-url", default="http://127.0.0.1:8086")
    back.add_argument("--database", default="bess")
    back.add_argument("--site", default="shop", help="value of the site tag")
    back.add_argument(
        "--pv-forecast-every-s",
        type=int,
        default=3600,
        help="also write a pv_forecast issue of the simulated PV every N s (0 = none)",
    )
    back.add_argument("--pv-forecast-horizon-h", type=int, default=48, help="hours each pv_forecast issue covers")


def parse_utc(text: str) -> dt.datetime:
    """ISO 8601 -> aware UTC datetime (naive means UTC)."""
    value = dt.datetime.fromisoformat(text)
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def main(args: argparse.Namespace) -> int:
    """Run the command; 0 ok, 1 runtime failure, 2 bad usage."""
    setup_logging(args.log_level)
    log = get_logger("simulate")
    if args.cells < 1 or args.step_s < 1:
        log.error("bad_arguments", problem="--cells and --step-s must be >= 1")
        return 2
    if args.backfill:
        return _backfill(args, log)
    if args.modbus_port is None and args.mqtt_port is None:
        log.error("bad_arguments", problem="give --modbus-port and/or --mqtt-port (or --backfill)")
        return 2
    try:
        ZoneInfo(args.pv_forecast_tz)
    except (ZoneInfoNotFoundError, ValueError):
        log.error("bad_arguments", problem=f"--pv-forecast-tz: unknown time zone {args.pv_forecast_tz!r}")
        return 2
    return _live(args, log)


def _live(args: argparse.Namespace, log: Any) -> int:
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    sim = GxSimulator(
        args.seed,
        modbus_port=args.modbus_port,
        mqtt_host=args.mqtt_host,
        mqtt_port=args.mqtt_port,
        portal_id=args.portal_id,
        cells=args.cells,
        modbus_host=args.modbus_host,
        keepalive_timeout_s=args.keepalive_timeout_s,
        modbus_read_write=args.modbus_read_write,
        bms=args.bms,
        firmware=args.firmware,
        inverter=args.inverter,
    )
    pv_server: PvForecastServer | None = None
    try:
        sim.start()
        if args.pv_forecast_port is not None:
            pv_server = PvForecastServer(
                SimPvForecast(sim.physics),
                host=args.modbus_host,
                port=args.pv_forecast_port,
                zone=args.pv_forecast_tz,
                clock=sim.clock,
            ).start()
    except (OSError, ConnectionError) as exc:
        log.error("simulator_start_failed", error=str(exc))
        sim.stop()
        return 1
    log.info(
        "simulator_started",
        modbus_port=sim.modbus_port,
        mqtt=f"{args.mqtt_host}:{args.mqtt_port}",
        portal_id=args.portal_id,
        seed=args.seed,
        cells=args.cells,
        bms=args.bms,
        inverter=args.inverter,
        firmware=args.firmware or "registers.csv",
        pv_forecast_port=pv_server.port if pv_server else None,
    )
    try:
        stop.wait()
    finally:
        if pv_server is not None:
            pv_server.stop()
        sim.stop()
    log.info("simulator_stopped")
    return 0


def _backfill(args: argparse.Namespace, log: Any) -> int:
    try:
        if not args.start or not args.end:
            raise ValueError("--backfill needs --start and --end")
        start, end = parse_utc(args.start), parse_utc(args.end)
        if end <= start:
            raise ValueError("--end must be after --start")
        if args.pv_forecast_every_s != 0 and (args.pv_forecast_every_s < 60 or args.pv_forecast_horizon_h < 1):
            raise ValueError("--pv-forecast-every-s must be 0 or >= 60, --pv-forecast-horizon-h >= 1")
        settings = InfluxSettings(url=args.influx_url, database=args.database)
    except ValueError as exc:
        log.error("bad_arguments", problem=str(exc).splitlines()[0])
        return 2
    start_ns, end_ns = int(start.timestamp()) * 10**9, int(end.timestamp()) * 10**9
    client = InfluxClient(settings)
    physics = BessPhysics(args.seed, args.cells)
    samples = history_samples(
        physics, start_ns, end_ns, args.step_s, site=args.site, portal_id=args.portal_id, bms=args.bms
    )
    if args.pv_forecast_every_s:
        issues = pv_forecast_samples(
            physics,
            start_ns,
            end_ns,
            args.pv_forecast_every_s,
            horizon_s=3600 * args.pv_forecast_horizon_h,
            site=args.site,
        )
        samples = heapq.merge(samples, issues, key=lambda s: s.ts_ns)  # both in time order: progress stays true
    samples = heapq.merge(samples, plan_samples(physics, start_ns, end_ns, site=args.site), key=lambda s: s.ts_ns)

    def report(p: BackfillStatus) -> None:
        log.info(
            "backfill_progress",
            percent=round(100 * p.done_fraction, 1),
            points=p.points,
            points_per_s=round(p.points_per_s),
        )

    began = time.monotonic()
    try:
        client.create_database()
        written = write_batches(client, samples, start_ns, end_ns, report)
    except BessError as exc:
        log.error("backfill_failed", error=str(exc))
        return 1
    finally:
        client.close()
    log.info(
        "backfill_done",
        points=written,
        seconds=round(time.monotonic() - began, 1),
        start=start.isoformat(),
        end=end.isoformat(),
        step_s=args.step_s,
    )
    return 0
