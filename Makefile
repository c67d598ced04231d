# The two commands of the README: `make demo` and `make test`. Both set up .venv first.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup demo up test test-fast lint typecheck check clean

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
	@$(BIN)/ruff check shared services workers probeval tests bench examples scripts
	@$(BIN)/ruff format --check shared services workers probeval tests bench examples scripts

typecheck: setup
	@$(BIN)/mypy shared services

check: lint typecheck test

clean:
	rm -rf var reports .pytest_cache .mypy_cache .ruff_cache
