# Everything a newcomer needs: `make test` and (with the server) `make serve`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev

.PHONY: test lint serve bench clean venv

# The example project `make serve` runs (examples/todo or examples/progress).
EXAMPLE ?= todo

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

# Lint and types (configured in pyproject.toml); `make test` runs them first, so CI does.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

test: lint
	$(BIN)/python -m pytest -q

serve: $(STAMP)
	$(BIN)/python -m runtime serve examples/$(EXAMPLE)

bench: $(STAMP)
	$(BIN)/python bench/actors.py
	$(BIN)/python bench/streams.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
