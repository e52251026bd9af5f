# Every target sets up .venv itself when it is missing or pyproject.toml changed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: help demo test test-fast lint format typecheck serve bench bench-pair chaos browser clean

help:
	@echo "make demo       set up and run a real release validation (two LiteLLM releases)"
	@echo "make test       set up and run the whole test suite (real SQLite, Postgres, processes)"
	@echo "make test-fast  the suite without tests marked slow"
	@echo "make lint       ruff lint + format check"
	@echo "make typecheck  mypy --strict on observatory/"
	@echo "make serve      run the service (API, reports, scheduler, worker)"
	@echo "make bench      run the benchmarks (ratios against a reference, side by side)"
	@echo "make chaos      break a real service on Postgres (kill -9, Slack, ...) and count losses"
	@echo "make bench-pair one real side-by-side pair (35 min, quiet host), added to the real-pair rates"

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

# Browser tests drive Debian's Chromium; install it when we can (root with apt-get).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get install -y -qq chromium chromium-driver >/dev/null 2>&1 || \
	    { apt-get update -qq >/dev/null && apt-get install -y -qq chromium chromium-driver >/dev/null; }; \
	  else echo "chromium not found: browser tests will skip (apt install chromium)"; fi; }

test: $(STAMP) browser
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

typecheck: $(STAMP)
	$(BIN)/mypy

CONFIG ?= $(if $(wildcard observatory.yaml),observatory.yaml,docs/demo.yaml)
serve: $(STAMP)
	$(BIN)/observatory --config $(CONFIG) serve

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py $(BENCH)

# CHAOS="kill9 slack"; CHAOS="--pg-restart" adds a Postgres restart (disturbs its other users).
chaos: $(STAMP)
	$(BIN)/python benchmarks/chaos.py $(CHAOS)

# One real side-by-side pair of benchmarks/power.yaml, then its line in
# benchmarks/results/real_pairs.jsonl (docs/benchmarks.md). Needs a quiet host for PAIR_DURATION.
PAIR_DURATION ?= 35m
bench-pair: $(STAMP)
	-$(BIN)/observatory --config benchmarks/power.yaml run --build litellm-1.81.9-again \
	  --scenario power --baseline alongside --duration $(PAIR_DURATION)
	$(BIN)/python benchmarks/real_pairs.py record --database sqlite:///data/power/observatory.db

demo: $(STAMP)
	$(BIN)/observatory demo $(DEMO_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
