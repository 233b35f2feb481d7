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

.PHONY: help setup setup-dev run test test-fast lint format bench serve suite data-check example-wine report plots remote release retrain kfp clean

help: ## List the targets, one line each
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-13s\033[0m %s\n", $$1, $$2}'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# A venv made by uv itself has no pip (and `uv sync` removes uv and pip from it): bootstrap pip first then.
$(UV): | $(BIN)/python
	$(BIN)/python -m pip --version >/dev/null 2>&1 || $(BIN)/python -m ensurepip --upgrade >/dev/null
	$(BIN)/python -m pip install --quiet --disable-pip-version-check "uv==0.13.8"

# Running needs the [project] dependencies only; tests, lint and benchmarks add the dev and kfp groups.
# --inexact: a run-only sync never uninstalls the tools a dev sync put there.
$(VENV)/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --inexact --no-default-groups --python $(BIN)/python
	@touch $@

$(VENV)/.synced-dev: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --python $(BIN)/python
	@touch $(VENV)/.synced $@

setup: $(VENV)/.synced ## Create .venv and install what running the pipeline needs (uv, from uv.lock)

setup-dev: $(VENV)/.synced-dev ## setup, plus the test, lint and Kubeflow tooling (dependency groups dev, kfp)

run: setup ## Run the pipeline (dvc repro) on the built-in EV battery telemetry and print the metrics
	@git rev-parse --verify -q HEAD >/dev/null || { echo "make run needs a git repository with a commit (clone it, or git init && git commit)"; exit 1; }
	$(BIN)/dvc repro
	@echo; $(BIN)/dvc metrics show metrics/evaluate/metrics.json

# Two pytest workers on two cores: one OpenMP thread each, or HistGradientBoosting oversubscribes the CPU.
test: setup-dev ## Run the whole test suite (unit, stages, API, end-to-end)
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -n 2 --dist loadgroup --durations=20

test-fast: setup-dev ## Run the tests not marked slow
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -n 2 -m "not slow"

lint: setup-dev ## ruff check and format check
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

format: setup-dev ## Apply ruff fixes and formatting
	$(BIN)/ruff check --fix src tests bench
	$(BIN)/ruff format src tests bench

suite: setup ## Write a starter data contract for ingest.source from its data (dvc repro ingest first); FORCE=1 overwrites
	$(BIN)/dvc repro ingest
	$(BIN)/python -m lifecycle.quality suggest $(if $(FORCE),--force)

data-check: setup ## List input files experiments and clones cannot see (not tracked by git or DVC), with the fix for each
	$(BIN)/python -m lifecycle.data.tracking

BENCH ?= pipeline validate experiments serve load score onnx_latency
bench: setup-dev ## Run the benchmarks in bench/ (BENCH="pipeline serve" for some); results in docs/benchmarks.md
	@for b in $(BENCH); do echo "== bench/$$b.py"; $(BIN)/python bench/$$b.py || exit 1; done

WINE := -S ingest.source=data/external/winequality-red.csv -S "+ingest.read_options.sep=';'" \
	-S ingest.target=quality -S validate.min_class_rows=5
example-wine: setup ## Train on the real wine-quality data as classification and as regression (experiments; workspace untouched)
	$(BIN)/dvc exp run --temp -n wine-classification $(WINE) -S ingest.task=classification promote
	$(BIN)/dvc exp run --temp -n wine-regression $(WINE) -S ingest.task=regression promote
	$(BIN)/dvc exp show --only-changed --drop 'unexpected_percent.*|Created'

serve: setup ## Serve models/model.joblib over HTTP on PORT (8000) with WORKERS (1); SERVE_* settings: docs/serving.md
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} SERVE_PORT=$(PORT) SERVE_WORKERS=$(WORKERS) $(BIN)/python -m lifecycle.serve

BASE ?= main
report: setup ## Markdown report of metrics, params and plots vs BASE (default main) in reports/pr/ (the PR comment)
	$(BIN)/python -m lifecycle.reporting --base $(BASE) --out reports/pr/report.md --quiet
	@echo "wrote reports/pr/report.md"

plots: setup ## dvc plots diff vs BASE as an offline HTML page (vega inlined) in reports/plots/index.html
	$(BIN)/dvc plots diff $(BASE) -o reports/plots

# The DVC remote `storage` for this clone only (.dvc/config.local): nothing about a bucket is committed.
remote: setup ## Point the DVC remote `storage` at URL=s3://<bucket>/<prefix> [ENDPOINT=<url>] [REGION=<name>] for this clone
	@case "$(URL)" in s3://?*/?*) ;; *) echo "make remote: URL=s3://<bucket>/<prefix> is required (got '$(URL)'); e.g. make remote URL=s3://my-team-dvc/lifecycle ENDPOINT=http://127.0.0.1:9000" >&2; exit 2;; esac
	$(BIN)/dvc remote add --local --force --default storage "$(URL)"
	$(BIN)/dvc remote modify --local storage verify true
	$(if $(ENDPOINT),$(BIN)/dvc remote modify --local storage endpointurl "$(ENDPOINT)",$(BIN)/dvc remote modify --local --unset storage endpointurl)
	$(if $(REGION),$(BIN)/dvc remote modify --local storage region "$(REGION)",@true)
	@$(BIN)/dvc remote list --local

release: setup ## Register the model (GTO) and assign prod when models/promotion.json says promote
	$(BIN)/python -m lifecycle.registry release $(if $(PUSH),--push)
	@git diff --quiet -- models/champion.json || { $(BIN)/dvc repro promote && echo "champion updated: commit models/champion.json dvc.lock models/promotion.json, then git push --follow-tags"; }

# Exit codes of lifecycle.retrain (make turns any of them into 2; reports/pr/retrain.json keeps the real one): 0 branch
# written, 1 error, 3 no retrain needed, 4 candidate rejected by the gate, 5 not enough new labelled rows.
retrain: setup ## On a retrain decision: train on the labelled batches as a DVC experiment; if the gate passes, a branch + PR body
	$(BIN)/python -m lifecycle.retrain

kfp: setup-dev ## Compile the Kubeflow pipeline and the Katib Experiment from dvc.yaml + params.yaml into deploy/kfp/ (offline)
	$(BIN)/python -m lifecycle.kfp compile --out deploy/kfp/pipeline.yaml
	$(BIN)/python -m lifecycle.kfp katib --out deploy/kfp/katib-experiment.yaml

clean: ## Remove the virtual environment and caches (pipeline outputs stay; dvc checkout restores them)
	rm -rf $(VENV) .pytest_cache .ruff_cache
