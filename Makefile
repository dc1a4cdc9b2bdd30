# Two entry points for a fresh machine: `make demo` and `make test` (see README.md).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/test

.PHONY: install demo test format bench bench-bulk

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test]"
	touch $@

install: $(VENV)/.installed

demo: install
	bash deploy/demo.sh

test: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy
	DATABASE_URL=$(TEST_DATABASE_URL) $(BIN)/pytest
	@echo "Again on SQLite, the embedded default (threaded concurrency tests need PostgreSQL):"
	DATABASE_URL=sqlite:///var/test-embedded.sqlite3 $(BIN)/pytest -q -m "not slow"

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Full server against the floor, interleaved (see README, Performance); not part of `make test`.
bench: install
	$(BIN)/python -m bench.run $(BENCH_ARGS)

# Export, import and transaction throughput on an existing directory (bench/bulk.py).
bench-bulk: install
	$(BIN)/python -m bench.bulk $(BENCH_BULK_ARGS)
