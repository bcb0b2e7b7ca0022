# veilflow — the project's vocabulary. `make demo` and `make test` work on a fresh machine.
SHELL := /bin/bash
.DEFAULT_GOAL := help
PYTHON ?= python3
ROWS ?= 100000
APPEND_ROWS ?= 5000
VENV := .venv
BIN := $(VENV)/bin
UV := $(shell command -v uv 2>/dev/null || echo "$(PYTHON) -m uv")
export VEILFLOW_HOME ?= $(CURDIR)/.veilflow
AIRFLOW_ENV = eval "$$($(BIN)/veilflow airflow env)"

.PHONY: help venv demo test test-fast lint bench up down clean db detector

help:  ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(BIN)/veilflow: pyproject.toml uv.lock
	@command -v uv >/dev/null 2>&1 || $(PYTHON) -m uv --version >/dev/null 2>&1 || \
	  $(PYTHON) -m pip install --quiet uv
	$(UV) sync --frozen
	@touch $@

venv: $(BIN)/veilflow  ## create .venv from uv.lock (uv sync --frozen)

db: venv  ## start the embedded PostgreSQL and apply migrations
	$(BIN)/veilflow db upgrade

demo: db  ## seed customers, run its DAG, grow the table and run it again, print the summaries
	$(BIN)/veilflow seed --rows $(ROWS)
	@$(BIN)/veilflow budget set customers --epsilon 30  # the DP releases' total (admin)
	@$(AIRFLOW_ENV) && airflow db migrate >$$VEILFLOW_HOME/airflow-migrate.log 2>&1 \
	  || { echo "airflow db migrate failed; see $$VEILFLOW_HOME/airflow-migrate.log"; exit 1; }
	@echo "running DAG veilflow_customers, a full run (log: $(VEILFLOW_HOME)/demo-dag.log) ..."
	@$(AIRFLOW_ENV) && airflow dags reserialize >/dev/null 2>&1 && \
	  airflow dags test veilflow_customers -c '{"full": true}' >$(VEILFLOW_HOME)/demo-dag.log 2>&1 \
	  || { echo "DAG run failed; see $(VEILFLOW_HOME)/demo-dag.log"; \
	       $(BIN)/veilflow runs show --dataset customers; exit 1; }
	@$(BIN)/veilflow runs show --dataset customers
	@echo
	@$(BIN)/veilflow seed --rows $(APPEND_ROWS) --append  # new customers: the source grows
	@echo "running DAG veilflow_customers again: it appends the new rows past the cursor" \
	  "(log: $(VEILFLOW_HOME)/demo-dag-2.log) ..."
	@$(AIRFLOW_ENV) && airflow dags test veilflow_customers >$(VEILFLOW_HOME)/demo-dag-2.log 2>&1 \
	  || { echo "DAG run failed; see $(VEILFLOW_HOME)/demo-dag-2.log"; \
	       $(BIN)/veilflow runs show --dataset customers; exit 1; }
	@$(BIN)/veilflow runs show --dataset customers
	@echo
	@$(BIN)/veilflow risk history customers
	@echo "the risk trend, plotted: make up, then http://localhost:8080/veilflow/risk/customers" \
	  "(or Veilflow > Runs > a run > risk history); as JSON: $(BIN)/veilflow risk history" \
	  "customers --format json"

test: venv  ## the whole suite: unit, integration (embedded PostgreSQL), end-to-end DAG and UI
	./scripts/system-deps.sh
	$(BIN)/pytest -q

test-fast: venv  ## unit tests only
	$(BIN)/pytest -q tests/unit

lint: venv  ## ruff, format check, mypy --strict on the library, import layers
	$(BIN)/ruff check plugins dags tests benchmarks
	$(BIN)/ruff format --check plugins dags tests benchmarks
	$(BIN)/mypy plugins/veilflow
	$(BIN)/lint-imports

detector: venv  ## rebuild the shipped detector from its seed (a few minutes; ADR 0015)
	$(BIN)/veilflow -v detector build

bench: db  ## speed and quality benchmarks (prints figures; see benchmarks/RESULTS.md)
	@for b in benchmarks/*.py; do case $$b in */corpus.py|*/_*.py) continue;; esac; \
	  echo "== $$b"; $(BIN)/python $$b || exit 1; done

up: db  ## start Airflow (standalone: api-server, scheduler, dag-processor, triggerer)
	@$(AIRFLOW_ENV) && airflow db migrate >$$VEILFLOW_HOME/airflow-migrate.log 2>&1
	@./scripts/airflow-up.sh

down:  ## stop Airflow and the embedded PostgreSQL
	@./scripts/airflow-down.sh
	@[ -x $(BIN)/veilflow ] && $(BIN)/veilflow db stop || true

clean: down  ## remove the state folder (data, keys, Airflow home)
	rm -rf $(VEILFLOW_HOME)
