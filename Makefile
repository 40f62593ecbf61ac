# Quick start (README): `make demo` runs the main job; `make test` installs everything and runs
# every test.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: demo playground up down test unit e2e lint deps system-deps cluster-binaries bench-serve bench-analysis bench-scale bench-rollback bench-sidecar clean

demo: deps  # demo/run.py builds the binaries itself, saying how long the first build takes
	$(PY) demo/run.py $(DEMO_ARGS)

playground: up

up: deps cluster-binaries
	$(PY) -m tests.cluster up

down:
	$(PY) -m tests.cluster down

test: deps cluster-binaries lint
	$(PY) -m pytest $(PYTEST_ARGS)

unit: deps
	$(PY) -m pytest -m "not e2e" $(PYTEST_ARGS)

e2e: deps cluster-binaries
	$(PY) -m pytest -m e2e $(PYTEST_ARGS)

lint: deps
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

deps: system-deps $(VENV)/.installed

system-deps:
	bash scripts/install-system-deps.sh

$(VENV)/.installed: pyproject.toml
	@echo "installing the Python packages into $(VENV) (first run: a few minutes, torch is large)"
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev,serve]'
	touch $@

bench-serve: deps
	$(PY) bench/serve/run.py

bench-analysis: deps
	$(PY) bench/analysis/run.py

bench-sidecar: deps
	$(PY) bench/sidecar/run.py

bench-scale: deps cluster-binaries
	$(PY) bench/scale/run.py $(BENCH_ARGS)

bench-rollback: deps cluster-binaries
	$(PY) bench/rollback/run.py $(BENCH_ARGS)

cluster-binaries:
	bash tests/cluster/build.sh >/dev/null

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
