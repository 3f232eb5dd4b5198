# The two commands: `make demo` and `make test`. Each creates .venv when missing and
# (re)installs the project when pyproject.toml changed, then runs its job.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[dev,bench,notebooks]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/cellctl demo

lint: $(STAMP)
	$(BIN)/ruff check planners sim cells bench tests
	$(BIN)/ruff format --check planners sim cells bench tests

typecheck: $(STAMP)
	$(BIN)/mypy

test: lint typecheck
	$(BIN)/python -m pytest -q -m "not slow"

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
