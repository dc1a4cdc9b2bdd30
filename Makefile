# Two entry points for a fresh machine: `make demo` and `make test` (see README.md).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/test
DEMO_BIND ?= 127.0.0.1:8000

.PHONY: install demo serve test lint format

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test]"
	touch $@

install: $(VENV)/.installed

demo: install
	mkdir -p var
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py loaddirectory --skip-existing
	@echo
	$(BIN)/python manage.py demosetup --dir var/jwt --base-url http://$(DEMO_BIND)/fhir
	@echo
	SECURITY_JWT_ISSUERS_FILE=var/jwt/issuers.json \
	    $(BIN)/gunicorn directory.wsgi --config deploy/gunicorn.conf.py --bind $(DEMO_BIND)

test: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	DATABASE_URL=$(TEST_DATABASE_URL) $(BIN)/pytest
	@echo "Again on SQLite, the embedded default (threaded concurrency tests need PostgreSQL):"
	DATABASE_URL=sqlite:///var/test-embedded.sqlite3 $(BIN)/pytest -q -m "not slow"

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .
