"""TLS settings: fingerprint parsing and start-up validation (no network)."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from bess_common.errors import ConfigError
from collector.config import CollectorSettings, GxSettings
from collector.sources.mqtt import MqttSource
from collector.sources.mqtt_tls import certificate_sha256, normalise_fingerprint, tls_context

FP = "ab" * 32


@pytest.mark.parametrize("text", [FP, FP.upper(), ":".join(["AB"] * 32), " ".join(["ab"] * 32)])
def test_when_fingerprint_written_any_usual_way_then_normalised(text: str) -> None:
    assert normalise_fingerprint(text) == FP


@pytest.mark.parametrize("text", ["ab" * 31, "zz" * 32, "ab" * 33, "sha256:" + FP])
def test_when_fingerprint_malformed_then_value_error(text: str) -> None:
    with pytest.raises(ValueError, match="64 hex digits"):
        normalise_fingerprint(text)


def test_when_pinned_without_ca_then_pin_is_the_trust_anchor_and_no_hostname_check() -> None:
    context, check_hostname = tls_context(GxSettings(mqtt_tls=True, mqtt_cert_sha256=FP))
    assert not check_hostname
    assert context.verify_mode == ssl.CERT_NONE and not context.check_hostname
    assert context.sslsocket_class.expected_sha256 == FP  # type: ignore[attr-defined]


def test_when_no_pin_then_certificate_and_hostname_verified() -> None:
    context, check_hostname = tls_context(GxSettings(mqtt_tls=True))
    assert check_hostname and context.verify_mode == ssl.CERT_REQUIRED


def test_when_certificate_hashed_then_sha256_of_der() -> None:
    assert certificate_sha256(b"abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


@pytest.mark.parametrize(
    "gx",
    [
        GxSettings(mqtt_tls=True, mqtt_cert_sha256="nope"),
        GxSettings(mqtt_tls=True, mqtt_ca_file=Path("/nonexistent/ca")),
    ],
)
def test_when_tls_settings_broken_then_config_error_at_construction(gx: GxSettings) -> None:
    with pytest.raises(ConfigError) as info:
        MqttSource(gx, CollectorSettings())
    assert info.value.problems[0].startswith("gx.mqtt_tls:")
