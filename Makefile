# isbench: the two Quick start commands are `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

# Prefect runs in ephemeral mode (no server) with its SQLite database under a project-local
# PREFECT_HOME; telemetry is off.
export PREFECT_HOME ?= $(CURDIR)/.prefect
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export DO_NOT_TRACK := 1
export GX_ANALYTICS_ENABLED := false
export MLFLOW_DISABLE_TELEMETRY := true
# A new SQLite database is migrated on the ephemeral server's first start (slower than Prefect's
# default 20 s startup timeout on 2 cores: the first `make demo` on a fresh machine timed out).
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS ?= 180

.PHONY: demo test install browser lint lock clean

# --compile-bytecode: with PYTHONDONTWRITEBYTECODE set (as on our CI machines) nothing would ever
# cache the bytecode, and every process would recompile Prefect, GX and pandas on import.
$(STAMP): pyproject.toml requirements.lock
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check uv
	$(VENV)/bin/uv pip install --python $(PY) --compile-bytecode -r requirements.lock
	$(VENV)/bin/uv pip install --python $(PY) --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

## demo: generate a demo dataset and run the daily_retrain flow on it (ephemeral Prefect)
demo: install
	$(VENV)/bin/isbench demo

## browser: Debian's chromium for the headless-browser tests, installed when missing and root
browser:
	@if command -v chromium >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing Debian's chromium for the browser tests (about a minute)"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get install -y -q chromium >/dev/null 2>&1 || \
	  { apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null; }; \
	else \
	  echo "chromium is missing and this is not root: the browser tests will skip" \
	       "(with CI=true they fail)"; \
	fi

## test: the type checker (mypy over is_core, tasks, flows, deployments; pyproject.toml), then
## the full test suite, slow end-to-end tests included
test: install browser
	$(PY) -m mypy
	PREFECT_HOME=$$(mktemp -d) $(PY) -m pytest

lint: install
	$(VENV)/bin/ruff check is_core tasks flows deployments tests benchmarks

## lock: re-resolve requirements.lock from pyproject.toml (needs the package registry)
lock:
	$(VENV)/bin/uv pip compile pyproject.toml --extra test --python-version 3.11 -o requirements.lock

clean:
	rm -rf $(VENV) .prefect runs data registry
