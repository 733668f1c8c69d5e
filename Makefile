# circuitatlas — `make demo` runs the main job on the embedded default, `make test` runs the tests.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
DEMO_DIR ?= demo-run
# Neo4j's own Cypher linter (npm), used by the tests on every Neo4j statement
CYPHER_LINT := tools/cypher-lint/node_modules/.installed
# Debian's chromium, driven by Playwright in the report's browser test
CHROMIUM := $(VENV)/.chromium

.PHONY: install demo test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch first, pinned: the local CPU wheel, so no CUDA build is pulled in later
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

$(CYPHER_LINT): tools/cypher-lint/package.json tools/cypher-lint/package-lock.json
	command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 \
		|| (apt-get update -qq && apt-get install -y -qq nodejs npm)
	npm ci --prefix tools/cypher-lint --no-audit --no-fund --loglevel=error
	touch $@

$(CHROMIUM): $(STAMP)
	command -v chromium >/dev/null 2>&1 \
		|| (apt-get update -qq && apt-get install -y -qq chromium)
	touch $@

install: $(STAMP) $(CYPHER_LINT) $(CHROMIUM)

demo: $(STAMP)
	HF_HUB_OFFLINE=1 $(VENV)/bin/circuitatlas demo --out $(DEMO_DIR)

lint: $(STAMP)
	$(VENV)/bin/ruff check circuitatlas tests benchmarks
	$(VENV)/bin/ruff format --check circuitatlas tests benchmarks

test: $(STAMP) $(CYPHER_LINT) $(CHROMIUM) lint
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q

bench: $(STAMP)
	HF_HUB_OFFLINE=1 $(PY) benchmarks/sweep.py
	$(PY) benchmarks/store.py
	$(PY) benchmarks/analytics.py
	$(PY) benchmarks/paths.py

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache tools/cypher-lint/node_modules
