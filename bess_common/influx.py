"""The InfluxDB edge: line protocol to /write, InfluxQL on /query (the 1.x HTTP API).

InfluxDB 1.x serves this natively; 2.x and 3.x serve it as compatibility endpoints, so one code path
covers all three. Auth: username/password (HTTP Basic) or a token (`Authorization: Token ...`).
Errors come out classified (see bess_common.errors); this module never retries by itself.
"""

from __future__ import annotations

import contextlib
import json
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import urllib3

from bess_common.config import InfluxSettings, duration_h
from bess_common.errors import FatalError, RejectedError, RetryableError


class AuthError(FatalError):
    """401/403 from InfluxDB: credentials are wrong or lack permission."""


class DatabaseNotFound(RetryableError):
    """The database does not exist (yet)."""


@dataclass(frozen=True, slots=True)
class Series:
    """One series of a /query answer."""

    name: str
    columns: list[str]
    values: list[list[Any]]
    tags: dict[str, str] = field(default_factory=dict)

    def rows(self) -> list[dict[str, Any]]:
        """Values as dicts keyed by column name."""
        return [dict(zip(self.columns, row, strict=False)) for row in self.values]


def _shown_h(shown: str) -> float:
    """Hours in a duration as SHOW RETENTION POLICIES prints it ('9600h0m0s'; '0s' = forever)."""
    found = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?", shown)
    if not found:
        return -1.0
    hours, minutes, seconds = (int(g or 0) for g in found.groups())
    return hours + minutes / 60 + seconds / 3600


def _retry_after(headers: Any) -> float | None:
    value = headers.get("Retry-After") if headers else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


class InfluxClient:
    """Thin HTTP client; construct once per process and share."""

    def __init__(self, settings: InfluxSettings, pool: urllib3.PoolManager | None = None) -> None:
        self.settings = settings
        self.base_url = settings.url
        self._pool = pool or self._make_pool(settings)
        self._headers = self._auth_headers(settings)

    @staticmethod
    def _make_pool(settings: InfluxSettings) -> urllib3.PoolManager:
        timeout = urllib3.Timeout(total=settings.timeout_s)
        kwargs: dict[str, Any] = {"timeout": timeout, "retries": False, "maxsize": 4}
        if settings.url.startswith("https"):
            if not settings.verify_tls:
                kwargs["cert_reqs"] = "CERT_NONE"
            else:
                kwargs["cert_reqs"] = "CERT_REQUIRED"
                if settings.ca_file:
                    kwargs["ca_certs"] = str(settings.ca_file)
        return urllib3.PoolManager(**kwargs)

    @staticmethod
    def _auth_headers(settings: InfluxSettings) -> dict[str, str]:
        token = settings.token.get_secret_value()
        if token:
            return {"Authorization": f"Token {token}"}
        if settings.username:
            return urllib3.make_headers(basic_auth=f"{settings.username}:{settings.password.get_secret_value()}")
        return {}

    def _request(
        self, method: str, path: str, params: dict[str, str], body: bytes | None = None, content_type: str | None = None
    ) -> urllib3.BaseHTTPResponse:
        url = f"{self.base_url}{path}?{urlencode(params)}"
        headers = dict(self._headers)
        if content_type:
            headers["Content-Type"] = content_type
        try:
            return self._pool.request(method, url, body=body, headers=headers)
        except urllib3.exceptions.SSLError as exc:  # say why: an untrusted certificate is fixed in the config
            hint = "; check influx.ca_file" if "CERTIFICATE_VERIFY_FAILED" in str(exc) else ""
            raise RetryableError(f"InfluxDB unreachable at {self.base_url}: TLS: {exc}{hint}") from exc
        except urllib3.exceptions.HTTPError as exc:
            raise RetryableError(f"InfluxDB unreachable at {self.base_url}: {exc.__class__.__name__}") from exc

    def _raise_for(self, resp: urllib3.BaseHTTPResponse, what: str) -> None:
        status = resp.status
        if 200 <= status < 300:
            return
        text = resp.data.decode("utf-8", "replace")[:500]
        try:
            detail = json.loads(text).get("error", text)
        except (ValueError, AttributeError):
            detail = text
        message = f"{what}: HTTP {status}: {detail}".strip()
        if status in (401, 403):
            raise AuthError(message + " (check the InfluxDB username/password or token)")
        if status == 404 and "database not found" in str(detail):
            raise DatabaseNotFound(message)
        if status in (400, 413, 422):
            raise RejectedError(message, status=status)
        raise RetryableError(message, retry_after_s=_retry_after(resp.headers))

    def ping(self) -> str:
        """GET /ping; returns the server version header (may be empty)."""
        resp = self._request("GET", "/ping", {})
        self._raise_for(resp, "ping")
        return str(resp.headers.get("X-Influxdb-Version", ""))

    def write(self, lines: list[str], database: str | None = None) -> None:
        """POST line protocol (ns precision). Raises RetryableError/RejectedError/AuthError."""
        if not lines:
            return
        params = {"db": database or self.settings.database, "precision": "ns"}
        if self.settings.retention_policy:
            params["rp"] = self.settings.retention_policy
        body = ("\n".join(lines) + "\n").encode("utf-8")
        resp = self._request("POST", "/write", params, body, "text/plain; charset=utf-8")
        self._raise_for(resp, "write")

    def query(self, q: str, database: str | None = None) -> list[Series]:
        """Run InfluxQL (epoch=ns); return every series of every statement."""
        params = {"db": database or self.settings.database, "q": q, "epoch": "ns"}
        method = "GET" if q.lstrip().upper().startswith(("SELECT", "SHOW")) else "POST"
        resp = self._request(method, "/query", params)
        self._raise_for(resp, "query")
        payload = json.loads(resp.data or b"{}")
        out: list[Series] = []
        for result in payload.get("results", []):
            if "error" in result:
                raise RejectedError(f"query: {result['error']}")
            for s in result.get("series", []):
                out.append(
                    Series(s.get("name", ""), s.get("columns", []), s.get("values", []), s.get("tags", {}) or {})
                )
        return out

    def create_database(self) -> None:
        """CREATE DATABASE (1.x). On 2.x/3.x the bucket must exist; a refusal there is ignored."""
        with contextlib.suppress(RejectedError):
            self.query(f'CREATE DATABASE "{self.settings.database}"')

    def apply_retention(self) -> str | None:
        """Set `retention_duration` (1.x): on `retention_policy` (created if missing), else on the database's
        default policy. Returns what changed ('created ...', 'altered ... from X'), or None when nothing was
        to do. Raises RejectedError where the server refuses (2.x/3.x: set the bucket's retention there)."""
        duration = self.settings.retention_duration
        if not duration:
            return None
        db = self.settings.database
        policies = {str(r["name"]): r for s in self.query(f'SHOW RETENTION POLICIES ON "{db}"') for r in s.rows()}
        name = self.settings.retention_policy or next((n for n, r in policies.items() if r.get("default")), "")
        if not name:
            raise RejectedError(f"database {db!r} has no default retention policy to set")
        want_h = duration_h(duration) if duration != "INF" else 0
        current = policies.get(name)
        if current is None:
            self.query(f'CREATE RETENTION POLICY "{name}" ON "{db}" DURATION {duration} REPLICATION 1')
            return f"created {name} with duration {duration}"
        shown = str(current.get("duration", ""))
        if _shown_h(shown) == want_h:
            return None
        self.query(f'ALTER RETENTION POLICY "{name}" ON "{db}" DURATION {duration}')
        return f"altered {name} from {shown} to {duration}"

    def close(self) -> None:
        """Release pooled connections."""
        self._pool.clear()
