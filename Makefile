# The two commands: `make demo` and `make test`. Everything else is for developers.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_DB ?= demo/biobank.db
DEMO_URL := sqlite:///$(DEMO_DB)

.PHONY: demo test bench lint install system-deps clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "imaging-biobank needs Python 3.11 or newer (set PYTHON=python3.11)")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

## demo: build a demo imaging biobank on embedded SQLite and print what it holds
demo: install
	@mkdir -p $(dir $(DEMO_DB))
	$(BIN)/imaging-biobank init --db $(DEMO_URL)
	$(BIN)/imaging-biobank register examples/primage.yaml --db $(DEMO_URL)
	$(BIN)/imaging-biobank stats --db $(DEMO_URL)
	@echo "Demo database: $(DEMO_DB). Try: $(BIN)/imaging-biobank show collection bbmri-eric:ID:ES_PRIMAGE:collection:NB_TISSUE --db $(DEMO_URL)"

## system-deps: the servers the tests start (PostgreSQL), from Debian packages
system-deps:
	@scripts/install-test-deps.sh

## test: install what the tests need and run them all
test: install system-deps
	$(BIN)/python -m pytest

## bench: the benchmarks, each against a named baseline in the same run
bench: install
	$(BIN)/python benchmarks/startup.py

## lint: ruff and mypy on the package
lint: install
	$(BIN)/ruff check src tests benchmarks tools
	$(BIN)/ruff format --check src tests benchmarks tools
	$(BIN)/mypy

clean:
	rm -rf $(VENV) demo .pytest_cache .mypy_cache .ruff_cache
