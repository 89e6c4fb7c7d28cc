# Two entry points: `make demo` (the main job) and `make test` (the whole suite).
# Both create .venv, install the CPU build of torch first, then the package with its extras.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH_VERSION ?= 2.13.0
STAMP := $(VENV)/.dropkit-installed

.PHONY: demo test lint typecheck unit bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==$(TORCH_VERSION)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/dropkit demo

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/python -m pytest -n 2 -q

test: lint typecheck unit

# The peers' wheels are downloaded (no dependencies, nothing installed); the benchmark reads
# torchvision's and timm's dropout files from them.
PEER_WHEELS ?= torchvision==0.29.1 timm

bench: $(STAMP)
	$(BIN)/python -m pip download --quiet --no-deps --only-binary=:all: -d .whl $(PEER_WHEELS)
	$(BIN)/python benchmarks/bench.py
	$(BIN)/python benchmarks/memory.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
