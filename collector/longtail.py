"""The long tail: every GX topic the tables do not map, stored on change in one generic measurement.

Pure logic plus a lock. The MQTT source hands over `TopicValue` records (service, instance, path, value and
the full-republish cycle it arrived in); `LongTail.offer` keeps one when it passes, in this order:
1. the allow/deny patterns (`fnmatch` over "<service>/<instance><path>", `*` spans slashes);
2. on change: a value equal to the last one stored for the topic is skipped, unless it is the first of a
   new full republish (so every republish stores every topic once, constants included);
3. the topic budget (`max_topics` distinct topics tracked, new ones beyond are dropped);
4. a token bucket per device (service/instance) and one for the whole tail: a chatty device can never
   swamp the buffer, and one device's flood never spends the others' share.
Kept values wait as `Sample`s until the agent's next tick drains them into the durable buffer. Everything
refused is counted by reason (and per device when capped) for /metrics.
"""

from __future__ import annotations

import fnmatch
import re
import threading
from collections import Counter
from dataclasses import dataclass

from bess_common.sample import FieldValue, Sample
from bess_common.schema import GX_TOPIC
from collector.config import LongTailSettings
from collector.observation import Invalid, TopicValue

MAX_PENDING = 100_000  # samples waiting for the next tick; beyond (the ticker stalled) they are dropped, counted


class TokenBucket:
    """`rate_per_s` tokens a second, at most `burst` saved up; time is passed in (monotonic seconds)."""

    def __init__(self, rate_per_s: float, burst: int, now_s: float) -> None:
        self.rate_per_s = rate_per_s
        self.burst = float(burst)
        self.tokens = float(burst)
        self.at_s = now_s

    def take(self, now_s: float) -> bool:
        """Spend one token if there is one."""
        if now_s > self.at_s:
            self.tokens = min(self.burst, self.tokens + (now_s - self.at_s) * self.rate_per_s)
            self.at_s = now_s
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


def _compile(patterns: list[str]) -> re.Pattern[str] | None:
    if not patterns:
        return None
    return re.compile("|".join(f"(?:{fnmatch.translate(p)})" for p in patterns))


@dataclass(frozen=True, slots=True)
class _Stored:
    value: float | str | Invalid
    cycle: int


def topic_key(service: str, instance: int, path: str) -> str:
    """The name patterns match: "<service>/<instance><path>", e.g. "vebus/276/Ac/Out/L1/P"."""
    return f"{service}/{instance}{path}"


def tail_fields(value: float | str | Invalid) -> dict[str, FieldValue]:
    """One field per point: `value` (numbers, as float), `text` (strings, JSON of lists), `invalid` (null)."""
    if isinstance(value, Invalid):
        return {"invalid": True}
    if isinstance(value, str):
        return {"text": value}
    return {"value": float(value)}


class LongTail:
    """Filter, on-change test, topic budget and rate caps of the long tail; thread-safe."""

    def __init__(self, settings: LongTailSettings, site: str) -> None:
        self._settings = settings
        self._site = site
        self._allow = _compile(settings.allow)
        self._deny = _compile(settings.deny)
        self._lock = threading.Lock()
        self._verdicts: dict[str, bool] = {}
        self._last: dict[str, _Stored] = {}
        self._buckets: dict[str, TokenBucket] = {}
        self._total: TokenBucket | None = None
        self._pending: list[Sample] = []
        self.counts: Counter[str] = Counter()
        self.capped_by_device: Counter[str] = Counter()

    def _allowed(self, key: str) -> bool:
        verdict = self._verdicts.get(key)
        if verdict is None:
            allowed = self._allow is not None and self._allow.match(key) is not None
            verdict = allowed and (self._deny is None or self._deny.match(key) is None)
            if len(self._verdicts) < 4 * self._settings.max_topics:  # bounded: a flood of new names is not kept
                self._verdicts[key] = verdict
        return verdict

    def _bucket(self, device: str, now_s: float) -> TokenBucket:
        bucket = self._buckets.get(device)
        if bucket is None:
            s = self._settings
            bucket = self._buckets[device] = TokenBucket(s.device_rate_per_s, s.device_burst, now_s)
        return bucket

    def offer(self, item: TopicValue) -> bool:
        """Keep `item` if it passes (see the module doc); return whether it was kept."""
        key = topic_key(item.service, item.instance, item.path)
        with self._lock:
            self.counts["offered"] += 1
            if not self._allowed(key):
                self.counts["denied"] += 1
                return False
            last = self._last.get(key)
            if last is not None and last.cycle == item.republish and last.value == item.value:
                self.counts["unchanged"] += 1
                return False
            if last is None and len(self._last) >= self._settings.max_topics:
                self.counts["over_max_topics"] += 1
                return False
            return self._spend(key, item)

    def _spend(self, key: str, item: TopicValue) -> bool:
        device = f"{item.service}/{item.instance}"
        if self._total is None:
            self._total = TokenBucket(self._settings.rate_per_s, self._settings.burst, item.mono_s)
        if not self._bucket(device, item.mono_s).take(item.mono_s):
            self.counts["capped"] += 1
            self.capped_by_device[device] += 1
            return False
        if not self._total.take(item.mono_s):
            self.counts["capped"] += 1
            self.capped_by_device["(all)"] += 1
            return False
        if len(self._pending) >= MAX_PENDING:
            self.counts["pending_overflow"] += 1
            return False
        self._last[key] = _Stored(item.value, item.republish)
        tags = {"site": self._site, "service": item.service, "instance": str(item.instance), "path": item.path}
        self._pending.append(Sample(GX_TOPIC, tags, tail_fields(item.value), item.wall_ns))
        self.counts["stored"] += 1
        return True

    def drain(self) -> list[Sample]:
        """The kept samples since the last drain (the agent buffers them with the second's grid rows)."""
        with self._lock:
            out, self._pending = self._pending, []
            return out

    def counters(self) -> dict[str, int]:
        """offered, stored, denied, unchanged, capped, over_max_topics, pending_overflow, topics."""
        with self._lock:
            out = {k: self.counts.get(k, 0) for k in ("offered", "stored", "denied", "unchanged", "capped")}
            out.update({k: v for k, v in self.counts.items() if k not in out})
            out["topics"] = len(self._last)
            return out

    def capped_devices(self) -> dict[str, int]:
        """Values refused by the rate caps, per device ("(all)": the whole tail's cap)."""
        with self._lock:
            return dict(self.capped_by_device)
