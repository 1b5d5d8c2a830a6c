# Two commands a new machine needs: `make run` and `make test`. Both build .venv themselves.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint perf screenshots clean

# Debian's and Ubuntu's python3 ships venv without ensurepip (package python3-venv); install it
# when we may, else say exactly what is missing.
$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import ensurepip' 2>/dev/null || { \
	  pkg=python$$($(PYTHON) -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')-venv; \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -q && apt-get install -y -q $$pkg python3-venv; \
	  elif command -v sudo >/dev/null; then sudo apt-get update -q && sudo apt-get install -y -q $$pkg python3-venv; \
	  else echo "python3 lacks venv support: install the python3-venv package" >&2; exit 1; fi; }
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
