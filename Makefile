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

export AIRFLOW_HOME := $(CURDIR)/.airflow
export AIRFLOW_CONFIG := $(CURDIR)/airflow.cfg
export AIRFLOW__CORE__DAGS_FOLDER := $(CURDIR)/dags
export AIRFLOW__CORE__PLUGINS_FOLDER := $(CURDIR)/plugins
export AUTOPO_DATA_DIR := $(abspath $(DATA))
export AUTOPO_PG_DIR ?= $(CURDIR)/.pg
export AUTOPO_CONFIG_DIR := $(CURDIR)/dags/configs

.PHONY: help setup demo run test lint bench pools db-start db-stop db-url sample clean check-config up down status airflow

help:
	@echo "make demo                      set up, run po_snapshots then stock_health on a generated sample day, print what they did"
	@echo "make test                      run the whole test suite"
	@echo "make run PIPELINE=.. DATE=.. DATA=..   run one date through the DAG on a data root"
	@echo "make db-url                    the warehouse's connection URI"
	@echo "make bench                     measure a 40-store day: naive stack vs floor vs the product (docs/performance.md)"
	@echo "make up / make down            start / stop Airflow (UI, scheduler, DAG processor, triggerer) on this machine"

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: requirements.txt pyproject.toml | $(BIN)/activate
	$(BIN)/python -m pip install -q "uv==$(UV_VERSION)"
	$(BIN)/uv pip install -q --python $(BIN)/python -r requirements.txt
	$(BIN)/uv pip install -q --python $(BIN)/python --no-deps -e .
	touch $@

$(AIRFLOW_HOME)/.migrated: $(VENV)/.installed
	mkdir -p $(AIRFLOW_HOME)
	$(BIN)/airflow db migrate > $(AIRFLOW_HOME)/db-migrate.log 2>&1 || (tail -20 $(AIRFLOW_HOME)/db-migrate.log; exit 1)
	touch $@

setup: $(AIRFLOW_HOME)/.migrated db-start pools

# Each pipeline's transforms run in its own pool, so pipelines never starve each other.
pools: $(AIRFLOW_HOME)/.migrated
	@$(BIN)/python -m autopo_pipelines.config pools | while read -r pool slots; do \
		$(BIN)/airflow pools set "$$pool" "$$slots" "autopo pipeline $$pool" > /dev/null; done

db-start: $(VENV)/.installed
	@$(BIN)/python -m autopo_pipelines.embedded_pg start
	@$(BIN)/python -m autopo_pipelines.migrations --url "$$($(BIN)/python -m autopo_pipelines.embedded_pg url)" --dir migrations

db-stop: $(VENV)/.installed
	@$(BIN)/python -m autopo_pipelines.embedded_pg stop

db-url: $(VENV)/.installed
	@if [ -n "$${AIRFLOW_CONN_AUTOPO_DB:-}" ]; then echo "$$AIRFLOW_CONN_AUTOPO_DB"; \
	else $(BIN)/python -m autopo_pipelines.embedded_pg url; fi

sample: $(VENV)/.installed
	@$(BIN)/python -m autopo_pipelines.sample_day --date $(DATE)

# Runs one date through the real DAG (`airflow dags test`), then prints the day's summary.
# Exit status is non-zero when the day did not complete.
run: setup
	@export AIRFLOW_CONN_AUTOPO_DB="$${AIRFLOW_CONN_AUTOPO_DB:-$$($(BIN)/python -m autopo_pipelines.embedded_pg url)}"; \
	mkdir -p $(AIRFLOW_HOME)/runs; log=$(AIRFLOW_HOME)/runs/$(PIPELINE)_$(DATE).log; \
	echo "running $(PIPELINE) for $(DATE) on $(AUTOPO_DATA_DIR) (Airflow log: $$log)"; \
	start=$$(date +%s); rc=0; \
	AUTOPO_DEADLINE_ALERTS=off $(BIN)/airflow dags test $(PIPELINE) -c '{"date": "$(DATE)"}' > $$log 2>&1 || rc=$$?; \
	echo "took $$(( $$(date +%s) - start ))s"; \
	if grep -q "DagRun Finished" $$log; then \
		$(BIN)/python -m autopo_pipelines.summary --pipeline $(PIPELINE) --date $(DATE) || rc=1; \
	else echo "the DAG did not run; the end of its log:"; tail -25 $$log; fi; \
	exit $$rc

# PO first: stock_health's on_order_qty comes from the PO snapshot of the same date.
demo: setup
	@stamp=$$(echo $(DATE) | tr -d -); \
	if ! ls "$(AUTOPO_DATA_DIR)/inbox/stock_health/"*"$$stamp"* "$(AUTOPO_DATA_DIR)/inbox/po_snapshots/"*"$(DATE)"* \
		>/dev/null 2>&1; then $(BIN)/python -m autopo_pipelines.sample_day --date $(DATE); fi
	@$(MAKE) --no-print-directory run PIPELINE=po_snapshots DATE=$(DATE)
	@$(MAKE) --no-print-directory run PIPELINE=stock_health DATE=$(DATE)

API_PORT ?= 8080

# Airflow as a user runs it, in the background; prints the UI address and login. Metadata in the
# embedded PostgreSQL (database airflow_local); component logs in .airflow/component-logs/.
up: setup
	@$(BIN)/python -m autopo_pipelines.local_airflow up --port $(API_PORT)

# Stops exactly the processes `make up` started (their process groups), nothing else.
down: $(VENV)/.installed
	@$(BIN)/python -m autopo_pipelines.local_airflow down

status: $(VENV)/.installed
	@$(BIN)/python -m autopo_pipelines.local_airflow status

# The airflow CLI against the stack `make up` started, e.g.
# make airflow ARGS='backfill create --dag-id stock_health --from-date 2024-11-01 --to-date 2024-11-03'
airflow: $(VENV)/.installed
	@$(BIN)/python -m autopo_pipelines.local_airflow airflow -- $(ARGS)

test: $(VENV)/.installed
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.installed
	$(BIN)/ruff check include plugins tests dags benchmarks
	$(BIN)/ruff format --check include plugins tests dags benchmarks

# Speed and memory, side by side with the naive stack and the floor (docs/performance.md). Not a test:
# it prints figures. BENCH_ARGS='--stores 10 --rows 5000 --repeat 1' for a quick look.
bench: setup
	$(BIN)/python benchmarks/day_benchmark.py $(BENCH_ARGS)

check-config: $(VENV)/.installed
	@$(BIN)/python -m autopo_pipelines.config check

clean:
	-$(BIN)/python -m autopo_pipelines.embedded_pg stop
	rm -rf $(AIRFLOW_HOME) .pg data
