# bess-edge developer interface. `make demo` and `make test` do all set-up themselves
# (OS packages when missing, a virtualenv, pinned Python packages with CPU-only torch).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
TORCH_VERSION := 2.13.0
# CPU-only torch: from a local wheel directory when one holds it, else from pip's configured index (which
# must serve the CPU build: docs/install.md, "CPU-only torch"); the install fails if torch has CUDA.
# Override TORCH_PIP_ARGS to name another source (e.g. --index-url URL of a CPU-only index).
TORCH_WHEELS ?= /opt/wheels
TORCH_PIP_ARGS ?= $(if $(wildcard $(TORCH_WHEELS)/torch-$(TORCH_VERSION)*),--find-links $(TORCH_WHEELS),)
CPU_TORCH_CHECK := import sys, torch; sys.exit(torch.version.cuda and f"torch {torch.__version__} is a CUDA build; install the CPU-only one (docs/install.md)")
# OS packages: InfluxDB 1.x and Mosquitto for the demo and the tests, Chromium for the report test.
OS_PACKAGES := influxdb mosquitto
TEST_OS_PACKAGES := chromium systemd
# Three workers: the integration tests mostly wait on real time (outages, stalls, TTLs; the CPU is idle
# about half the time with two), so three files at once cut the wall time on 2 cores; a file always stays
# on one worker (its servers and timing). The slowest tests are listed at the end of every run.
PYTEST_ARGS ?= -n 3 --dist loadfile --durations=15
# What ruff checks (mypy's packages are in pyproject.toml).
LINT_PATHS := bess_common collector forecaster tests bench deploy

.PHONY: help system-deps test-system-deps venv test test-unit lint typecheck demo clean bench-collector bench-forecaster

help:
	@echo "make demo    - local InfluxDB + broker + simulated GX + collector + forecaster"
	@echo "make test    - lint, typecheck, then the whole test suite (installs what it needs)"
	@echo "make lint | typecheck | test-unit | clean"

system-deps:
	@missing=""; \
	command -v influxd >/dev/null || missing="$$missing influxdb"; \
	command -v mosquitto >/dev/null && [ -x "$$(command -v mosquitto)" ] || { [ -x /usr/sbin/mosquitto ] || missing="$$missing mosquitto"; }; \
	$(PYTHON) -c 'import ensurepip, venv' 2>/dev/null || missing="$$missing python3-venv"; \
	/sbin/ldconfig -p 2>/dev/null | grep -q 'libgomp.so.1 ' || missing="$$missing libgomp1"; \
	if [ -n "$$missing" ]; then \
	  echo ">> installing OS packages:$$missing"; \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; } || { \
	    echo "make: could not install the OS packages$$missing (influxdb/mosquitto: the demo and tests;" \
	      "libgomp1: LightGBM's OpenMP runtime). Install them as root: apt-get install$$missing" >&2; exit 1; }; \
	fi

test-system-deps: system-deps
	@missing=""; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	command -v systemd-analyze >/dev/null || missing="$$missing systemd"; \
	if [ -n "$$missing" ]; then \
	  echo ">> installing OS packages for tests:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

$(VENV)/.installed: requirements.lock requirements-dev.lock pyproject.toml
	@[ -x $(PY) ] || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q $(TORCH_PIP_ARGS) torch==$(TORCH_VERSION)
	$(PY) -c '$(CPU_TORCH_CHECK)'
	$(PIP) install -q -r requirements.lock -r requirements-dev.lock
	$(PIP) install -q --no-deps -e .
	@touch $@

venv: $(VENV)/.installed

# Lint and typecheck first (seconds): the suite (minutes) only runs on code that passes them.
test: test-system-deps venv lint typecheck
	$(PY) -m pytest $(PYTEST_ARGS)

test-unit: venv
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

lint: venv
	$(VENV)/bin/ruff check $(LINT_PATHS)
	$(VENV)/bin/ruff format --check $(LINT_PATHS)

typecheck: venv
	$(VENV)/bin/mypy

bench-collector: system-deps venv
	BENCH_COMMAND="make bench-collector" $(PY) -m bench.collector_bench $(BENCH_ARGS)

bench-forecaster: system-deps venv
	BENCH_COMMAND="make bench-forecaster" $(PY) -m bench.forecaster_bench $(BENCH_ARGS)

demo: system-deps venv
	$(PY) -m deploy.demo

clean:
	rm -rf $(VENV) demo-run .pytest_cache .mypy_cache .ruff_cache
