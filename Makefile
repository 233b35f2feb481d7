# Every target sets up what it needs: on a fresh clone `make run` and `make test` are all you type.
SHELL := /bin/bash
.DEFAULT_GOAL := help
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV := $(BIN)/uv
PORT ?= 8000
WORKERS ?= 1
export PATH := $(CURDIR)/$(BIN):$(PATH)
export GX_ANALYTICS_ENABLED := False
export MPLBACKEND := Agg

.PHONY: help setup run test test-fast lint format bench serve suite report release clean

help: ## List the targets, one line each
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-11s\033[0m %s\n", $$1, $$2}'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(UV): | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check "uv==0.13.8"

$(VENV)/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --python $(BIN)/python
	@touch $@

setup: $(VENV)/.synced ## Create .venv and install the locked dependencies (uv, from uv.lock)

run: setup ## Run the pipeline (dvc repro) on the built-in EV battery telemetry and print the metrics
	@git rev-parse --verify -q HEAD >/dev/null || { echo "make run needs a git repository with a commit (clone it, or git init && git commit)"; exit 1; }
	$(BIN)/dvc repro
	@echo; $(BIN)/dvc metrics show

test: setup ## Run the whole test suite (unit, stages, API, end-to-end)
	$(BIN)/python -m pytest -n 2 --dist loadgroup

test-fast: setup ## Run the tests not marked slow
	$(BIN)/python -m pytest -n 2 -m "not slow"

lint: setup ## ruff check and format check
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

format: setup ## Apply ruff fixes and formatting
	$(BIN)/ruff check --fix src tests bench
	$(BIN)/ruff format src tests bench

bench: setup ## Run the benchmarks in bench/ (ratios against in-process baselines); see docs/benchmarks.md
	$(BIN)/python bench/pipeline.py

clean: ## Remove the virtual environment and caches (pipeline outputs stay; dvc checkout restores them)
	rm -rf $(VENV) .pytest_cache .ruff_cache
