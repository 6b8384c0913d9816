# The front door: `make demo` and `make test` work on a fresh clone (they install first).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
DEMO_DIR := data/demo
DEMO_CUSTOMERS ?= 20000
# Idle OpenMP threads sleep instead of spinning: on a busy machine spinning made one
# HistGradientBoosting fit 20x slower (200 s against 10 s).
export OMP_WAIT_POLICY ?= PASSIVE

.PHONY: install demo test lint format bench bench-smoke docs clean

$(INSTALLED): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e ".[dev]"
	touch $@

install: $(INSTALLED)

demo: install
	$(BIN)/segmart generate --customers $(DEMO_CUSTOMERS) --seed 42 --out $(DEMO_DIR)
	$(BIN)/segmart run --raw-dir $(DEMO_DIR)/raw

test: install
	$(BIN)/pytest -n 2 --dist loadgroup

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	# The dbt templater needs a profile that opens; an in-memory warehouse is enough to lint.
	cd dbt_project && SEGMART_WAREHOUSE=:memory: ../$(BIN)/sqlfluff lint models tests

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: install
	$(BIN)/python -m benchmarks.run --sizes S M

bench-smoke: install
	$(BIN)/python -m benchmarks.run --sizes XS --repetitions 1

docs: install
	cd dbt_project && SEGMART_RAW_DIR=$(abspath $(DEMO_DIR))/raw ../$(BIN)/dbt docs generate --profiles-dir ..

clean:
	rm -rf warehouse reports exports models data dbt_project/target dbt_project/logs
