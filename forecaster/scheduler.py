"""APScheduler wiring only: forecast per task at its cadence, scoring, fine-tune on its cron."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from forecaster.config import ForecasterSettings
from forecaster.windows import duration_ns

EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
FORECAST_DELAY_S = 5  # let the last bucket's telemetry land before forecasting from it
SCORE_DELAY_S = 30


def _crontab_dow(field: str) -> str:
    """crontab day-of-week (0/7 = Sunday) -> APScheduler 3.x (0 = Monday); names pass unchanged."""

    def one(n: str) -> int:
        return (int(n) + 6) % 7

    parts = []
    for part in field.split(","):
        match = re.fullmatch(r"(\d+)-(\d+)(/\d+)?", part)
        if match:
            a, b = one(match.group(1)), one(match.group(2))
            step = match.group(3) or ""
            parts.append(f"{a}-{b}{step}" if a <= b else f"{a}-6,0-{b}")
        elif part.isdigit():
            parts.append(str(one(part)))
        else:
            parts.append(part)
    return ",".join(parts)


def cron_trigger(expr: str) -> CronTrigger:
    """A UTC CronTrigger from a crontab line (5 fields) or with a leading seconds field (6 fields)."""
    fields = expr.split()
    if len(fields) == 5:
        fields = ["0", *fields]
    if len(fields) != 6:
        raise ValueError(f"cron needs 5 fields (or 6 with seconds), got {expr!r}")
    second, minute, hour, day, month, dow = fields
    return CronTrigger(
        second=second, minute=minute, hour=hour, day=day, month=month, day_of_week=_crontab_dow(dow), timezone=UTC
    )


def previous_fire(expr: str, now: datetime, lookback: timedelta = timedelta(days=35)) -> datetime | None:
    """The latest fire time of a cron expression at or before `now` (within the look-back)."""
    trigger = cron_trigger(expr)
    for span in (timedelta(minutes=2), timedelta(hours=2), timedelta(days=2), lookback):
        last = None
        fire = trigger.get_next_fire_time(None, now - min(span, lookback))
        while fire is not None and fire <= now:
            last = fire
            fire = trigger.get_next_fire_time(fire, fire + timedelta(seconds=1))
        if last is not None:
            return last
    return None


def build_scheduler(
    settings: ForecasterSettings,
    forecast: Callable[[str], Any],
    score: Callable[[], Any],
    finetune: Callable[[], Any] | None,
) -> BaseScheduler:
    """A BlockingScheduler with every job: max_instances=1, coalescing, misfire grace.

    Each task's forecast fires at every cut-off + FORECAST_DELAY_S (the interval trigger is anchored to a
    fixed epoch, never to the start-up second), plus once at start-up: `forecast` itself catches up the
    cut-offs missed meanwhile, so the start-up run and a periodic run may meet (serialise them there)."""
    scheduler = BlockingScheduler(
        timezone=UTC,
        executors={"default": ThreadPoolExecutor(4)},
        job_defaults={"max_instances": 1, "coalesce": True, "misfire_grace_time": settings.misfire_grace_s},
    )
    now = datetime.now(UTC)
    for task in settings.tasks:
        trigger = IntervalTrigger(
            seconds=task.cadence_s, start_date=EPOCH + timedelta(seconds=FORECAST_DELAY_S), timezone=UTC
        )
        scheduler.add_job(forecast, trigger, args=[task.name], id=f"forecast:{task.name}")
        scheduler.add_job(forecast, DateTrigger(now, timezone=UTC), args=[task.name], id=f"forecast-start:{task.name}")
    score_s = duration_ns(settings.score_interval) // 1_000_000_000
    scheduler.add_job(
        score,
        IntervalTrigger(seconds=score_s, start_date=EPOCH + timedelta(seconds=SCORE_DELAY_S), timezone=UTC),
        id="score",
    )
    scheduler.add_job(score, DateTrigger(now + timedelta(seconds=10), timezone=UTC), id="score-start")
    if finetune is not None and settings.finetune.cron.strip():
        scheduler.add_job(finetune, cron_trigger(settings.finetune.cron), id="finetune")
    return scheduler
