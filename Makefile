# The two quick-start commands: `make demo` and `make test`. Both work on a fresh machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip install --quiet --disable-pip-version-check

.PHONY: demo test lint bench bench-versioning clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip

## make demo: create .venv, install Shipyard and run the end-to-end demo
demo: $(BIN)/python
	$(PIP) -e '.[demo]'
	$(BIN)/shipyard demo

## make test: install the dev extras, lint, type-check, check layers and run the whole suite
test: $(BIN)/python
	$(PIP) -e '.[dev]'
	$(MAKE) --no-print-directory lint
	$(BIN)/python -m pytest -n 2 --dist loadgroup -p no:cacheprovider

lint:
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/lint-imports
	$(BIN)/mypy
	$(BIN)/mypy tests/typing

## make bench: side-by-side benchmarks against the peers (writes bench/RESULTS.md)
bench: $(BIN)/python
	$(PIP) -e '.[bench]'
	$(BIN)/python bench/bench_tracking.py
	$(BIN)/python bench/bench_team.py
	$(BIN)/python bench/bench_mlflow_api.py
	$(BIN)/python bench/bench_validation.py
	$(BIN)/python bench/bench_registry.py
	$(MAKE) --no-print-directory bench/.venv-bentoml/bin/python bench/.venv-mlserver/bin/python
	$(BIN)/python bench/bench_serving.py
	$(MAKE) --no-print-directory bench/.venv-peers/bin/python
	$(BIN)/python bench/bench_pipelines.py
	$(BIN)/python bench/bench_monitoring.py $(if $(wildcard bench/.venv-evidently/bin/python),,--no-evidently)

# Metaflow and Prefect pin libraries ours clash with (Prefect: an older FastAPI), so they get a venv of
# their own; the pins live in pyproject.toml's bench-peers extra.
PEER_PINS = $(shell $(BIN)/python -c "import tomllib; print(' '.join(repr(p) for p in tomllib.load(open('pyproject.toml', 'rb'))['project']['optional-dependencies']['bench-peers']))")
bench/.venv-peers/bin/python: $(BIN)/python
	$(PYTHON) -m venv bench/.venv-peers
	bench/.venv-peers/bin/python -m pip install --quiet --disable-pip-version-check $(PEER_PINS)

# BentoML and MLServer (bench_serving.py's peers) get a venv each: their pins clash with ours and with each
# other's. They load the pipeline pickled in .venv, so they get .venv's scikit-learn and numpy major (read
# from .venv when the target runs: install the bench extra first). bench_serving.py creates them the same
# way on first use (bench/peers/launch.py).
EXTRA_PINS = $(shell $(BIN)/python -c "import tomllib; print(' '.join(repr(p) for p in tomllib.load(open('pyproject.toml', 'rb'))['project']['optional-dependencies']['$(1)']))")
MODEL_PINS = $(shell $(BIN)/python -c "import sklearn, numpy; m = int(numpy.__version__.split('.')[0]); print(f\"'scikit-learn=={sklearn.__version__}' 'numpy>={m},<{m + 1}'\")")
bench/.venv-bentoml/bin/python bench/.venv-mlserver/bin/python: bench/.venv-%/bin/python: $(BIN)/python
	$(PYTHON) -m venv bench/.venv-$*
	$@ -m pip install --quiet --disable-pip-version-check $(call EXTRA_PINS,bench-$*) $(MODEL_PINS)

## make bench-versioning: 1 GB versioned with log_dataset and dvc add (several minutes, ~4 GB of disk)
bench-versioning: $(BIN)/python
	$(PIP) -e '.[bench]'
	$(BIN)/python bench/bench_versioning.py

clean:
	rm -rf $(VENV) .shipyard .pytest_cache .mypy_cache .ruff_cache
