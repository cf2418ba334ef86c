"""Throw-away TLS material for the integration tests: a self-signed certificate for 127.0.0.1 and a
mosquitto with a plain listener (the simulated GX publishes there) and a TLS one (the collector)."""

from __future__ import annotations

import hashlib
import shutil
import ssl
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from deploy.localservices import MosquittoServer


def make_cert(folder: Path) -> tuple[Path, Path, str]:
    """A self-signed certificate and key for CN venus.local / IP 127.0.0.1; (cert, key, sha256 of the DER)."""
    cert, key = folder / "gx.crt", folder / "gx.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=venus.local",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    key.chmod(0o644)  # mosquitto drops root privileges before reading them (test key, thrown away)
    der = ssl.PEM_cert_to_DER_cert(cert.read_text())
    return cert, key, hashlib.sha256(der).hexdigest()


@contextmanager
def tls_mosquitto(workdir: Path) -> Iterator[tuple[MosquittoServer, Path, str]]:
    """mosquitto with a plain and a TLS listener; (server, certificate, its sha256 fingerprint)."""
    folder = Path(tempfile.mkdtemp(prefix="bess-tls-"))  # pytest's tmp_path is private to root, and
    folder.chmod(0o755)  # mosquitto drops root privileges before it reads the certificate
    cert, key, fingerprint = make_cert(folder)
    server = MosquittoServer(workdir / "mosq-tls", certfile=cert, keyfile=key)
    server.start()  # ready once its log shows both listeners open
    assert server.tls_port is not None
    try:
        yield server, cert, fingerprint
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)
