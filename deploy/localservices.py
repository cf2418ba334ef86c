"""Throwaway InfluxDB 1.x and Mosquitto servers on free loopback ports, in a scratch folder.

Used by `make demo`, the integration tests and the benchmarks: always the real Debian binaries, never a
mock. Each server can be stopped and started again on the same port and data folder (fault tests).
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import urllib3


def free_port() -> int:
    """A TCP port that was free on 127.0.0.1 a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _which(name: str, fallbacks: tuple[str, ...]) -> str:
    found = shutil.which(name)
    if found:
        return found
    for path in fallbacks:
        if Path(path).exists():
            return path
    raise FileNotFoundError(f"{name} not found; install it: `apt-get install {name}` (or run `make test`)")


def wait_port(port: int, timeout_s: float = 20.0, host: str = "127.0.0.1") -> None:
    """Wait until something accepts TCP connections on the port."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on {host}:{port} after {timeout_s}s")


class _Server:
    name = "server"

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / f"{self.name}.log"

    def _command(self) -> list[str]:
        raise NotImplementedError

    def _wait_ready(self, timeout_s: float) -> None:
        wait_port(self.port, timeout_s)

    def start(self, timeout_s: float = 30.0) -> None:
        """Start (or restart) the server and wait until it answers."""
        if self.running:
            return
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            self._command(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )
        log.close()
        try:
            self._wait_ready(timeout_s)
        except TimeoutError:
            self.stop()
            tail = self.log_path.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{self.name} did not start on port {self.port}:\n{tail}") from None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 15.0) -> None:
        """Stop the server (SIGTERM, then SIGKILL after the timeout)."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def __enter__(self) -> _Server:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class InfluxServer(_Server):
    """influxd 1.x with its data under workdir, HTTP on 127.0.0.1:port, no auth, no reporting."""

    name = "influxd"

    def __init__(
        self,
        workdir: Path,
        port: int | None = None,
        auth: bool = False,
        https_cert: Path | None = None,
        https_key: Path | None = None,
    ) -> None:
        super().__init__(workdir, port)
        self.rpc_port = free_port()
        self.auth = auth
        self.https_cert = https_cert
        self.https_key = https_key

    @property
    def url(self) -> str:
        scheme = "https" if self.https_cert else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    def _config(self) -> str:
        d = self.workdir
        https = ""
        if self.https_cert:
            https = (
                f'  https-enabled = true\n  https-certificate = "{self.https_cert}"\n'
                f'  https-private-key = "{self.https_key}"\n'
            )
        return (
            f'reporting-disabled = true\nbind-address = "127.0.0.1:{self.rpc_port}"\n'
            f'[meta]\n  dir = "{d}/meta"\n'
            f'[data]\n  dir = "{d}/data"\n  wal-dir = "{d}/wal"\n  query-log-enabled = false\n'
            f'  cache-snapshot-write-cold-duration = "10s"\n'
            f'[http]\n  bind-address = "127.0.0.1:{self.port}"\n  log-enabled = false\n'
            f"  auth-enabled = {'true' if self.auth else 'false'}\n{https}"
            f"[monitor]\n  store-enabled = false\n"
            f"[continuous_queries]\n  enabled = false\n"
            f"[subscriber]\n  enabled = false\n"
        )

    def _command(self) -> list[str]:
        conf = self.workdir / "influxdb.conf"
        conf.write_text(self._config())
        return [_which("influxd", ("/usr/bin/influxd",)), "-config", str(conf)]

    def _wait_ready(self, timeout_s: float) -> None:
        http = urllib3.PoolManager(cert_reqs="CERT_NONE", retries=False, timeout=1.0)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                break
            try:
                if http.request("GET", f"{self.url}/ping").status == 204:
                    return
            except urllib3.exceptions.HTTPError:
                pass
            time.sleep(0.1)
        raise TimeoutError


class MosquittoServer(_Server):
    """mosquitto on 127.0.0.1:port, anonymous access (optionally a TLS listener too)."""

    name = "mosquitto"

    def __init__(
        self,
        workdir: Path,
        port: int | None = None,
        tls_port: int | None = None,
        certfile: Path | None = None,
        keyfile: Path | None = None,
    ) -> None:
        super().__init__(workdir, port)
        self.tls_port = tls_port
        self.certfile = certfile
        self.keyfile = keyfile

    def _command(self) -> list[str]:
        conf = self.workdir / "mosquitto.conf"
        lines = [
            "per_listener_settings false",
            "allow_anonymous true",
            "persistence false",
            f"listener {self.port} 127.0.0.1",
        ]
        if self.tls_port and self.certfile and self.keyfile:
            lines += [f"listener {self.tls_port} 127.0.0.1", f"certfile {self.certfile}", f"keyfile {self.keyfile}"]
        conf.write_text("\n".join(lines) + "\n")
        return [_which("mosquitto", ("/usr/sbin/mosquitto",)), "-c", str(conf)]
