# The two commands of the README: `make demo` and `make test`. Both set up .venv first.
SHELL := /bin/bash
VENV := .venv
BIN ?= $(VENV)/bin
# The code the checks cover (tests/bench/examples/scripts are linted too, typed loosely).
PACKAGES := shared services workers probeval
LINTED := $(PACKAGES) tests bench examples scripts

.PHONY: setup demo up test test-fast lint typecheck check lock clean

setup:
	@bash scripts/setup.sh

demo: setup
	@$(BIN)/probeval demo

test:
	@bash scripts/setup.sh --browser
	@echo "[test] running the whole suite (unit, coverage simulations, end to end with vLLM on CPU)"
	@$(BIN)/python -m pytest

test-fast: setup
	@$(BIN)/python -m pytest -m "not slow"

lint: setup
	@$(BIN)/ruff check $(LINTED)
	@$(BIN)/ruff format --check $(LINTED)

typecheck: setup
	@$(BIN)/mypy $(PACKAGES)

check: lint typecheck test

# Regenerate locks/*.txt from pyproject.toml (uv pip compile; see scripts/lock.sh).
lock:
	@bash scripts/lock.sh

clean:
	rm -rf var reports .pytest_cache .mypy_cache .ruff_cache
