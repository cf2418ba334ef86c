"""Throwaway InfluxDB 1.x and Mosquitto servers on free loopback ports, in a scratch folder.

Used by `make demo`, the integration tests and the benchmarks: always the real Debian binaries, never a
mock. Each server can be stopped and started again on the same port and data folder (fault tests).
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Self

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


def logged_port(
    proc: subprocess.Popen[bytes], log_path: Path, event: str, key: str, *, timeout_s: float = 30.0, since: int = 0
) -> int:
    """The port a child process of ours reports in its own JSON log (line `event`, field `key`, in the part of
    the file from byte `since` on) once it listens: start it on port 0 and read the port back, so no other
    process can have taken the port meanwhile."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        text = ""
        if log_path.exists():
            with log_path.open("rb") as handle:
                handle.seek(since)
                text = handle.read().decode(errors="replace")
        for line in text.splitlines():
            if line.startswith("{") and f'"{event}"' in line:
                port = json.loads(line).get(key)
                if isinstance(port, int) and port > 0:
                    return port
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode} before {event}:\n{text[-2000:]}")
        time.sleep(0.05)
    raise TimeoutError(f"no {event} with a {key} in {log_path} after {timeout_s}s")


BIND_ATTEMPTS = 5  # fresh ports tried when another process took a chosen port before our server bound it


class _Server:
    """A server process of ours. Ready means: the process is alive, its own log (the part written since this
    start) says it bound every one of its ports, and it answers. A free port is only free until someone
    binds it: when the log says the bind failed, the ports this class chose are chosen again and the server
    restarted (BIND_ATTEMPTS times). Ports given by the caller, and the ports of a restart, are kept."""

    name = "server"

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self._ports_fixed = port is not None  # a port the caller chose is never changed
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / f"{self.name}.log"
        self._log_from = 0  # where this start's part of the log begins

    def _command(self) -> list[str]:
        raise NotImplementedError

    def _choose_ports(self) -> None:
        """Pick new free ports for every port this class chose itself."""
        self.port = free_port()

    def _bound(self, log: str) -> bool:
        """The server's own log (this start's part) says it listens on all its ports."""
        raise NotImplementedError

    def _answers(self) -> bool:
        """A protocol-level check, once the log shows the bind (default: none)."""
        return True

    def own_log(self) -> str:
        """What the server logged since its latest start."""
        if not self.log_path.exists():
            return ""
        with self.log_path.open("rb") as handle:
            handle.seek(self._log_from)
            return handle.read().decode(errors="replace")

    def _wait_ready(self, timeout_s: float) -> str:
        """'ready', 'bind failed', 'exited' or 'timed out'."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            log = self.own_log()
            if "address already in use" in log.lower():
                return "bind failed"
            if not self.running:
                return "exited"
            if self._bound(log) and self._answers() and self.running:
                return "ready"
            time.sleep(0.05)
        return "timed out"

    def _spawn(self) -> None:
        self._log_from = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                self._command(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
            )

    def start(self, timeout_s: float = 30.0) -> None:
        """Start (or restart, on the same ports) the server and wait until it is ready (see the class)."""
        if self.running:
            return
        attempts = 1 if self._ports_fixed else BIND_ATTEMPTS
        for attempt in range(1, attempts + 1):
            self._spawn()
            outcome = self._wait_ready(timeout_s)
            if outcome == "ready":
                self._ports_fixed = True  # clients now know these ports: a restart keeps them
                return
            self.stop()
            if outcome != "bind failed" or attempt == attempts:
                tail = self.own_log()[-2000:]
                raise RuntimeError(f"{self.name} did not start on port {self.port} ({outcome}):\n{tail}")
            self._choose_ports()

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

    def __enter__(self) -> Self:
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

    def _choose_ports(self) -> None:
        self.port, self.rpc_port = free_port(), free_port()

    def _bound(self, log: str) -> bool:
        return re.search(rf'msg="Listening on HTTPS?" .*addr=127\.0\.0\.1:{self.port}\b', log) is not None

    def _answers(self) -> bool:
        http = urllib3.PoolManager(cert_reqs="CERT_NONE", retries=False, timeout=1.0)
        try:
            return http.request("GET", f"{self.url}/ping").status == 204
        except urllib3.exceptions.HTTPError:
            return False


class MosquittoServer(_Server):
    """mosquitto on 127.0.0.1:port, anonymous access; with certfile and keyfile also a TLS listener on
    tls_port (chosen like port when not given)."""

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
        self.certfile = certfile
        self.keyfile = keyfile
        self.tls_port = tls_port or (free_port() if certfile and keyfile else None)
        self._ports_fixed = port is not None or tls_port is not None

    def _ports(self) -> list[int]:
        return [self.port] + ([self.tls_port] if self.tls_port else [])

    def _choose_ports(self) -> None:
        self.port = free_port()
        if self.tls_port:
            self.tls_port = free_port()

    def _bound(self, log: str) -> bool:
        opened = {int(port) for port in re.findall(r"Opening ipv4 listen socket on port (\d+)\.", log)}
        return set(self._ports()) <= opened and re.search(r"mosquitto version \S+ running", log) is not None

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
