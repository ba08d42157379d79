# searchrec: `make demo` builds the demo index and serves it; `make test` runs the test suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
INDEXES := indexes
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install demo index test check bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

index: $(INDEXES)/scifact/CURRENT

$(INDEXES)/scifact/CURRENT: | $(STAMP)
	$(BIN)/searchrec build --corpus data/scifact --out $(INDEXES)/scifact

demo: install index
	$(BIN)/searchrec serve --index $(INDEXES)/scifact --host $(HOST) --port $(PORT)

test: install
	$(BIN)/python -m pytest

check: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: install index
	$(BIN)/python bench/run_all.py --out BENCHMARKS.md

clean:
	rm -rf $(INDEXES) .pytest_cache .ruff_cache .mypy_cache
