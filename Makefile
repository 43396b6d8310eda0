# One entry point for people and CI. `make demo` and `make test` work on a fresh machine.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= python3
VENV := $(CURDIR)/.venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.9

PIPELINE ?= stock_health
DATE ?= 2024-12-04
DATA ?= $(CURDIR)/data

# The local stack's folders (tools/autopo_local/stack.py): every target below that runs Airflow
# uses the same home, the same metadata database (airflow_local in the embedded PostgreSQL) and
# the same warehouse (AIRFLOW_CONN_AUTOPO_DB, else the embedded autopo database).
export AIRFLOW_HOME := $(CURDIR)/.airflow
export AUTOPO_DATA_DIR := $(abspath $(DATA))
export AUTOPO_PG_DIR ?= $(CURDIR)/.pg
LOCAL := $(BIN)/python -m autopo_local.stack

.PHONY: help setup demo run test lint bench bench-data-root bench-dashboard pools db-start db-stop db-url sample clean check-config up down status airflow
.PHONY: test-distributed dashboard-screenshot api

help:
	@echo "make demo                      set up, run po_snapshots then stock_health on a generated sample day, print what they did"
	@echo "make test                      run the whole test suite (make lint: ruff, mypy)"
	@echo "make up / status / down        start / show / stop Airflow (UI, scheduler, DAG processor, triggerer) on this machine"
	@echo "make run PIPELINE=.. DATE=.. DATA=..   run one date through the DAG on a data root, print its summary"
	@echo "make airflow ARGS='...'        the airflow CLI on the local stack's metadata database"
	@echo "make api GET=/autopo/api/v1/runs   GET a path of the running stack's API as the admin, print the JSON"
	@echo "make db-url                    the warehouse's connection URI"
	@echo "make dashboard-screenshot      docs/img/dashboard-grid.png: the dashboard's grid of DATE from the running stack"
	@echo "make check-config / pools      validate the pipeline configs / create their pools"
	@echo "make bench                     measure a 40-store day: naive stack vs floor vs the product (docs/performance.md)"
	@echo "make bench-data-root           the same day with the data root in a local folder and in a bucket (GCS emulator)"
	@echo "make bench-dashboard           the dashboard and admin API on 3 years x 120 stores of history: p50/p95 per endpoint"
	@echo "make clean                     stop everything, remove the local database, .airflow/ and data/"

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)

# The development venv: the runtime pins (what a production image installs) plus the dev tools, the
# package and the local stack (tools/) in editable mode.
$(VENV)/.installed: requirements.txt requirements-dev.txt pyproject.toml tools/pyproject.toml | $(BIN)/activate
	$(BIN)/python -m pip install -q "uv==$(UV_VERSION)"
	$(BIN)/uv pip install -q --python $(BIN)/python -r requirements.txt -r requirements-dev.txt
	$(BIN)/uv pip install -q --python $(BIN)/python --no-deps -e . -e tools
	$(BIN)/uv pip check -q --python $(BIN)/python
	touch $@

# The embedded PostgreSQL, the project's schema, Airflow's metadata database and the pools: each
# only when missing, so it is cheap to repeat.
setup: $(VENV)/.installed
	@tools/system_packages.sh --if-able
	@$(LOCAL) setup

# Each pipeline's transforms run in its own pool, so pipelines never starve each other.
pools: setup

db-start: $(VENV)/.installed
	@$(BIN)/python -m autopo_local.embedded_pg start
	@$(BIN)/python -m autopo_pipelines.migrations --url "$$($(BIN)/python -m autopo_local.embedded_pg url)" --dir migrations

db-stop: $(VENV)/.installed
	@$(BIN)/python -m autopo_local.embedded_pg stop

db-url: $(VENV)/.installed
	@$(LOCAL) db-url

sample: $(VENV)/.installed
	@$(BIN)/python -m autopo_local.sample_day --date $(DATE)

# Runs one date through the real DAG, then prints the day's summary: in-process (`airflow dags test`),
# or through the scheduler when `make up` runs. Exit status is non-zero when the day did not complete.
run: $(VENV)/.installed
	@$(LOCAL) run --pipeline $(PIPELINE) --date $(DATE)

# PO first: stock_health's on_order_qty comes from the PO snapshot of the same date.
demo: $(VENV)/.installed
	@tools/system_packages.sh --if-able
	@$(LOCAL) demo --date $(DATE)

API_PORT ?= 8080

# Airflow as a user runs it, in the background; prints the UI address and login. Component logs in
# .airflow/component-logs/.
up: $(VENV)/.installed
	@$(LOCAL) up --port $(API_PORT)

# Stops exactly the processes `make up` started (their process groups), nothing else.
down: $(VENV)/.installed
	@$(LOCAL) down

status: $(VENV)/.installed
	@$(LOCAL) status

# The README's picture of the dashboard: signs in to the running `make up` stack in Debian's chromium
# (Playwright; tools/system_packages.sh installs the browser), opens the dashboard from Airflow's menu and
# saves PIPELINE's stores x dates grid up to DATE (the demo's day by default) as docs/img/dashboard-grid.png.
dashboard-screenshot: $(VENV)/.installed
	@tools/system_packages.sh --if-able
	@$(BIN)/python -m autopo_local.screenshot --pipeline $(PIPELINE) --date $(DATE) --out docs/img/dashboard-grid.png

# GET a path of the running stack's API as the admin (a token from POST /auth/token), print the JSON, e.g.
# make api GET='/autopo/api/v1/runs?pipeline=stock_health' (the dashboard's admin API: docs/dashboard.md)
GET ?= /autopo/api/v1/runs
api: $(VENV)/.installed
	@$(LOCAL) api --get "$(GET)"

# The airflow CLI on the local stack's metadata database, running or not, e.g.
# make airflow ARGS='backfill create --dag-id stock_health --from-date 2024-11-01 --to-date 2024-11-03'
airflow: $(VENV)/.installed
	@$(LOCAL) airflow -- $(ARGS)

# The suite needs docker-compose and redis-server from apt besides the venv (tools/system_packages.sh:
# installed where this user can, else a note naming the command; .ci/run insists).
test: $(VENV)/.installed
	@tools/system_packages.sh --if-able
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Issue 18's proof: the compose file's services run natively on Celery, workers on hosts that share no
# disk (root: unshare; redis-server and docker-compose from apt). `make test` runs it too.
test-distributed: $(VENV)/.installed
	@tools/system_packages.sh --if-able
	$(BIN)/python -m pytest -m distributed $(PYTEST_ARGS)

# ruff's rules, complexity limit and Airflow rules, and mypy --strict on include/ and plugins/: all in pyproject.toml.
lint: $(VENV)/.installed
	$(BIN)/ruff check include plugins tests dags benchmarks tools
	$(BIN)/ruff format --check include plugins tests dags benchmarks tools
	$(BIN)/mypy

# Speed and memory, side by side with the naive stack and the floor, the rerun after one store's file
# changed and the scale row, ending with issue 20's targets and a ratios: line (docs/performance.md).
# Not a test: it prints figures. A quick look: BENCH_ARGS='--stores 6 --rows 2000 --repeat 1
# --scale 2,4,6,8 --scale-rows 1000 --skip naive' (the scale figures are then n/a).
bench: $(VENV)/.installed
	@$(LOCAL) exec -- $(BIN)/python $(CURDIR)/benchmarks/day_benchmark.py $(BENCH_ARGS)

# One day's time with the data root in a local folder and in a bucket on the GCS emulator, first run
# and rerun (docs/performance.md). BENCH_ARGS='--stores 4 --rows 500 --repeat 1' for a quick look.
bench-data-root: $(VENV)/.installed
	@$(LOCAL) exec -- $(BIN)/python $(CURDIR)/benchmarks/data_root_benchmark.py $(BENCH_ARGS)

# Every endpoint and page of the dashboard (/autopo) on generated history (3 years, 120 stores, ~134k file
# jobs) in a throwaway database: p50/p95 per endpoint, in-process, without the auth manager
# (docs/performance.md). BENCH_ARGS='--stores 20 --years 1 --requests 10' for a quick look.
bench-dashboard: $(VENV)/.installed
	@$(LOCAL) exec -- $(BIN)/python $(CURDIR)/benchmarks/dashboard_benchmark.py $(BENCH_ARGS)

check-config: $(VENV)/.installed
	@$(BIN)/python -m autopo_pipelines.config check

# The deployment files through the real compose parser (Debian's docker-compose; .ci/run installs it):
# docker-compose.yaml alone and with each profile (docs/deployment.md). COMPOSE='docker compose' for v2.
COMPOSE ?= docker-compose
.PHONY: compose-check
compose-check:
	@command -v $(firstword $(COMPOSE)) >/dev/null || { echo "$(COMPOSE) not found: apt-get install -y docker-compose" >&2; exit 1; }
	@for profile in "" local monitoring flower debug; do \
		$(COMPOSE) -f docker-compose.yaml $${profile:+--profile $$profile} config -q || exit 1; \
		echo "docker-compose.yaml: ok$${profile:+ with --profile $$profile}"; \
	done

# Stops `make up`'s processes and removes the embedded cluster (wherever it lives), Airflow's home and data/.
clean:
	-$(LOCAL) down
	-$(BIN)/python -m autopo_local.embedded_pg destroy
	rm -rf $(AIRFLOW_HOME) .pg data
