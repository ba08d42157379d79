# searchrec: `make demo` builds the demo index and serves it; `make test` runs the test suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.installed-bench
INDEXES := indexes
RANKERS := rankers
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install demo index rankers test browser check bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,distributed]'
	touch $(STAMP)

COLLECTIONS := $(INDEXES)/scifact/CURRENT $(INDEXES)/movies/CURRENT $(INDEXES)/cities/CURRENT

index: $(COLLECTIONS)

$(INDEXES)/scifact/CURRENT: | $(STAMP)
	$(BIN)/searchrec build --corpus data/scifact --out $(INDEXES)/scifact

$(INDEXES)/movies/CURRENT: | $(STAMP)
	$(BIN)/searchrec prepare movielens --data data/movielens --out $(INDEXES)/inputs/movies.jsonl
	$(BIN)/searchrec build --corpus $(INDEXES)/inputs/movies.jsonl --behaviour data/movielens/ratings.csv \
		--config data/configs/movies.toml --out $(INDEXES)/movies

$(INDEXES)/cities/CURRENT: | $(STAMP)
	$(BIN)/searchrec prepare cities --out $(INDEXES)/inputs/cities.jsonl
	$(BIN)/searchrec build --corpus $(INDEXES)/inputs/cities.jsonl --config data/configs/cities.toml \
		--out $(INDEXES)/cities

# Learned rankers: SciFact's on its train queries only, MovieLens's on the behaviour log.
rankers: $(RANKERS)/scifact/CURRENT $(RANKERS)/movies/CURRENT

$(RANKERS)/scifact/CURRENT: $(INDEXES)/scifact/CURRENT
	$(BIN)/searchrec train-ranker --index $(INDEXES)/scifact --queries data/scifact/queries.jsonl \
		--qrels data/scifact/qrels/train.tsv --out $(RANKERS)/scifact

$(RANKERS)/movies/CURRENT: $(INDEXES)/movies/CURRENT
	$(BIN)/searchrec train-ranker --index $(INDEXES)/movies --behaviour data/movielens/ratings.csv \
		--out $(RANKERS)/movies

demo: install index rankers
	$(BIN)/searchrec serve --index $(INDEXES)/scifact --index $(INDEXES)/movies --index $(INDEXES)/cities \
		--ranker scifact=$(RANKERS)/scifact --ranker movies=$(RANKERS)/movies --host $(HOST) --port $(PORT)

test: install browser
	$(BIN)/python -m pytest

# The search page's tests drive Debian's Chromium (Playwright never downloads a browser here).
browser:
	@command -v chromium >/dev/null || { \
		echo "installing Chromium from Debian's packages for the page tests"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends chromium; }

# Lint, format, types, and the layering: imports flow api > jobs > retrieval > ranker > indexer, no cycles.
check: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/test_layers.py

# The bench extra: peers the benchmarks compare against (txtai), kept out of the dev install.
$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,distributed,bench]'
	touch $(BENCH_STAMP)

# Writes bench/out/latest.md; BENCHMARKS.md holds the curated tables with the machine they ran on.
bench: $(BENCH_STAMP) index rankers
	mkdir -p bench/out
	$(BIN)/python bench/run_all.py --out bench/out/latest.md

clean:
	rm -rf $(INDEXES) $(RANKERS) .pytest_cache .ruff_cache .mypy_cache
