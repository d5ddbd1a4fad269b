# The two commands a newcomer needs: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test lint venv test-deps provision clean bench

$(BIN)/envlock: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e .
	@# Byte-compile now: an editable install leaves it to the first run, and a
	@# shell with PYTHONDONTWRITEBYTECODE=1 would recompile on every run (~0.1 s).
	$(BIN)/python -m compileall -q envlock
	@touch $@

venv: $(BIN)/envlock

test-deps: venv
	$(BIN)/python -m pip install -q -e '.[test]'

# Capture this machine, then replay and verify when a Docker engine is reachable.
demo: venv
	@bash scripts/demo.sh $(BIN)

# Everything the suite needs that is not a Python package (Docker base image, ...).
provision: test-deps
	@bash scripts/provision.sh $(BIN)

# The daily checks, before the (slow) suite: lint, formatting, types (configured in pyproject.toml).
lint: test-deps
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint provision
	$(BIN)/python -m pytest -q tests

# Every benchmark in turn; BENCH_ARGS="--quick --skip replay" for a smoke run without Docker.
bench: test-deps
	$(BIN)/python benchmarks/run_all.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache
