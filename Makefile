# Two commands a new machine needs: `make run` and `make test`. Both build .venv themselves.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint perf screenshots clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

## Start the app on the default SQLite store, filling it with demo data the first time.
run: $(STAMP)
	$(BIN)/helpdesk demo --if-empty
	$(BIN)/helpdesk

## The whole test suite: ruff, mypy, then pytest (linters run as tests too).
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/pytest -q

perf: $(STAMP)
	$(BIN)/pytest -q tests/perf -s

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
