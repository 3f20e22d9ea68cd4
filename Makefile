# Two commands on a fresh machine: `make run` and `make test`.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
LINT_DIRS := app tests scripts migrations $(wildcard evals)

.PHONY: install web run test lint typecheck migrate bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.lock
	$(BIN)/pip install --quiet --no-deps -e .

# The web app (web/): built from its lock file into app/web/static whenever a source changed.
WEB_BUILT := app/web/static/index.html
$(WEB_BUILT): web/package.json web/package-lock.json web/build.mjs $(wildcard web/src/*)
	@command -v npm >/dev/null || { echo "Building the web app needs Node.js 18+ with npm (apt-get install nodejs npm)"; exit 1; }
	cd web && npm ci --no-audit --no-fund --loglevel=error && node build.mjs

web: $(WEB_BUILT)

run: install web
	$(BIN)/python scripts/run.py

lint: install
	$(BIN)/ruff check $(LINT_DIRS)
	$(BIN)/ruff format --check $(LINT_DIRS)

typecheck: install
	$(BIN)/mypy

test: install web lint typecheck
	$(BIN)/pytest

migrate: install
	$(BIN)/alembic upgrade head

# ~15 minutes; `make bench BENCH_ARGS="--quick --json bench.json"` for a short run with a JSON copy.
bench: install
	$(BIN)/python -m scripts.bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .data .mypy_cache .ruff_cache .pytest_cache web/node_modules app/web/static
