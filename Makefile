# Two commands on a fresh machine: `make run` and `make test`.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
LINT_DIRS := app tests scripts migrations $(wildcard evals)

.PHONY: install run test lint typecheck migrate bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.lock
	$(BIN)/pip install --quiet --no-deps -e .

run: install
	$(BIN)/python scripts/run.py

lint: install
	$(BIN)/ruff check $(LINT_DIRS)
	$(BIN)/ruff format --check $(LINT_DIRS)

typecheck: install
	$(BIN)/mypy

test: install lint typecheck
	$(BIN)/pytest

migrate: install
	$(BIN)/alembic upgrade head

# ~15 minutes; `make bench BENCH_ARGS="--quick --json bench.json"` for a short run with a JSON copy.
bench: install
	$(BIN)/python -m scripts.bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .data .mypy_cache .ruff_cache .pytest_cache
