# Clientele: two commands on a fresh machine. `make run` serves the app, `make test` tests it.
# Without DATABASE_URL / REDIS_URL both start an embedded PostgreSQL and Redis under var/.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint layers format bench services clean-var

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/python -m crm.launcher run

test: $(STAMP) lint
	$(BIN)/python -m crm.launcher exec -- $(BIN)/python -m pytest $(PYTEST_ARGS)

# The import contracts (pyproject.toml, [tool.importlinter]) are the layers of the README.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

# The import contracts alone.
layers: $(STAMP)
	$(BIN)/lint-imports

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP)
	$(BIN)/python -m crm.launcher exec -- $(BIN)/python bench/run_all.py $(BENCH_ARGS)

services: $(STAMP)
	$(BIN)/python -m crm.launcher services

clean-var:
	rm -rf var
