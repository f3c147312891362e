# loopml's user interface. `make run` and `make test` set everything up first.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Airflow lives in its own venv (it pins fastapi<0.137); its tasks call $(BIN)/loopml.
AIRFLOW_VENV := .venv-airflow
AIRFLOW_STAMP := $(AIRFLOW_VENV)/.installed
# uv from PATH, else from the system Python's user site (bootstrapped from PyPI).
UV := $(shell command -v uv 2>/dev/null || echo "$(PYTHON) -m uv")
ARGS ?=
export MLFLOW_DISABLE_TELEMETRY := true

.PHONY: help setup lock run test test-fast test-cluster lint lint-quick secrets typecheck fmt audit serve ui clean airflow-setup airflow-lock dags

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

setup: $(STAMP) ## Create .venv from requirements.lock with the system Python (idempotent)
# --compile-bytecode: every fresh process (a Ray worker, a test's subprocess,
# the CLI) then loads .pyc files instead of compiling the sources, which it
# cannot cache where PYTHONDONTWRITEBYTECODE is set. Measured: the imports of
# a Ray Tune trial actor (ray, ray.tune, lightgbm, mlflow) 7.0 s -> 2.7 s CPU;
# setup 7 s -> 115 s (load average 11-22; 46 s of CPU). loopml's own src/ and
# .venv-airflow likewise.

$(STAMP): requirements.lock pyproject.toml
	@command -v uv >/dev/null 2>&1 || $(PYTHON) -m uv --version >/dev/null 2>&1 \
		|| $(PYTHON) -m pip install --quiet --user uv
	@test -x $(BIN)/python || $(UV) venv --quiet --python $(PYTHON) --python-preference only-system $(VENV)
	VIRTUAL_ENV=$(VENV) $(UV) pip sync --quiet --compile-bytecode --python $(BIN)/python requirements.lock
	VIRTUAL_ENV=$(VENV) $(UV) pip install --quiet --python $(BIN)/python --no-deps -e .
	$(BIN)/python -m compileall -q src
	@touch $(STAMP)

lock: ## Re-compile requirements.lock from pyproject.toml (pins only, no URLs)
	$(UV) pip compile pyproject.toml --extra dev --python-version 3.11 --no-header -o requirements.lock

airflow-setup: $(AIRFLOW_STAMP) dags ## Create .venv-airflow from requirements-airflow.lock (for dags/; idempotent)

dags: setup ## Write dags/workloads.json (the registered workloads the DAG file schedules)
	$(BIN)/loopml workloads --json > dags/workloads.json

$(AIRFLOW_STAMP): requirements-airflow.lock
	@command -v uv >/dev/null 2>&1 || $(PYTHON) -m uv --version >/dev/null 2>&1 \
		|| $(PYTHON) -m pip install --quiet --user uv
	@test -x $(AIRFLOW_VENV)/bin/python || $(UV) venv --quiet --python $(PYTHON) --python-preference only-system $(AIRFLOW_VENV)
	VIRTUAL_ENV=$(AIRFLOW_VENV) $(UV) pip sync --quiet --compile-bytecode --python $(AIRFLOW_VENV)/bin/python requirements-airflow.lock
	@touch $(AIRFLOW_STAMP)

airflow-lock: ## Re-compile requirements-airflow.lock from requirements-airflow.in (pins only, no URLs)
	$(UV) pip compile requirements-airflow.in --python-version 3.11 --no-header -o requirements-airflow.lock

run: setup ## Run the whole loop (pass options with ARGS="--dataset online-retail")
	$(BIN)/loopml run $(ARGS)

# mypy (~25 s of one core on a fresh clone) and the secret scan (~12 s) run
# beside the tests, which wait on servers and subprocesses much of the time;
# their output follows the tests'. Either failing fails the target. When the
# tests pass and no ARGS narrow the run, the two-node Ray test follows, alone.
test: setup lint-quick ## Quick lints, every test with mypy --strict and the secret scan beside them, then the two-node Ray test
	@log=$$(mktemp); ( $(MAKE) --no-print-directory --keep-going typecheck secrets > $$log 2>&1; echo $$? >> $$log.rc ) & \
	$(BIN)/pytest -q -n 3 --dist loadfile --no-loadscope-reorder -m "not cluster" $(ARGS); rc=$$?; \
	if [ $$rc = 0 ] && [ -z "$(ARGS)" ]; then \
	  echo "--- the two-node Ray cluster (make test-cluster), alone: its nodes need the CPUs"; \
	  $(BIN)/pytest -q -m cluster tests/integration/test_ray_cluster.py; rc=$$?; \
	fi; \
	wait; echo "--- mypy --strict src; secret scan"; cat $$log; lint=$$(cat $$log.rc); rm -f $$log $$log.rc; \
	if [ "$$lint" != 0 ]; then echo "mypy or the secret scan failed"; exit 1; fi; exit $$rc

test-cluster: setup ## Two-node Ray cluster on this machine: tune and batch on both nodes (minutes)
	$(BIN)/pytest -q -m cluster tests/integration/test_ray_cluster.py $(ARGS)

test-fast: setup ## Unit, data and model tests only: no servers, no lint (about a minute)
	$(BIN)/pytest -q -n 2 tests/unit tests/data tests/model $(ARGS)

lint: lint-quick secrets typecheck ## ruff check + ruff format --check + import layers + secret scan + mypy --strict on src/

lint-quick: setup ## The lints that take seconds: ruff, import layers
	$(BIN)/ruff check src tests dags
	$(BIN)/ruff format --check src tests dags
	$(BIN)/lint-imports

secrets: setup ## Secret scan: detect-secrets over the files git knows, against .secrets.baseline
	$(BIN)/python -m loopml.devtools.secret_scan

typecheck: setup ## mypy --strict on src/
	$(BIN)/mypy --strict src

audit: setup ## pip-audit of requirements.lock (needs PyPI's JSON API; fails when a package cannot be audited)
	$(BIN)/pip-audit --requirement requirements.lock --no-deps --disable-pip --strict --progress-spinner off

fmt: setup ## Format and fix what ruff can
	$(BIN)/ruff check --fix src tests dags
	$(BIN)/ruff format src tests dags

serve: setup ## Serve the champions on http://127.0.0.1:8000 (docs at /docs)
	$(BIN)/loopml serve $(ARGS)

ui: setup ## Open the MLflow UI on the active store (http://127.0.0.1:5000)
	$(BIN)/loopml ui $(ARGS)

clean: ## Remove the loopml home folder and caches (keeps .venv)
	rm -rf .loopml .loopml-production .pytest_cache .mypy_cache .ruff_cache

.PHONY: load soak bench-check scale

load: setup ## Fixed-rate load with a hot reload mid-run; 0 errors (docs/reliability.md)
	$(BIN)/python benchmarks/load.py $(ARGS)

soak: setup ## 10 minutes at a fixed rate, server RSS growth vs its bound (docs/reliability.md)
	$(BIN)/python benchmarks/load.py --soak $(ARGS)

scale: setup ## Every stage at a bigger size, time + peak memory into docs/scale.md (ARGS="--small" in CI)
	$(BIN)/python benchmarks/scale.py $(ARGS)

bench-check: setup ## Re-run the CI-sized benchmarks; exit 1 if a ratio regressed (ARGS="--record" to re-baseline)
	$(BIN)/python benchmarks/bench_check.py $(ARGS)
