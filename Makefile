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
# the local Neo4j server (Neo4j Community + OpenGDS from Maven Central, tools/neo4j/pom.xml)
NEO4J := $(PY) tools/neo4j/local.py

.PHONY: install demo test lint bench clean neo4j neo4j-stop neo4j-reset java

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch first, pinned, so nothing later pulls another build: a local CPU wheel where pip
	# finds one; else PyPI's default build (CUDA 13, about 4.7 GB and 2 min to install)
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[test,ray]'
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

java:
	command -v java >/dev/null 2>&1 && command -v mvn >/dev/null 2>&1 \
		|| (apt-get update -qq && apt-get install -y -qq openjdk-17-jre-headless maven)

install: $(STAMP) $(CYPHER_LINT) $(CHROMIUM) java

# starts the server in the background (a running one is reused) and writes .neo4j/env
neo4j: $(STAMP) java
	$(NEO4J) start

neo4j-stop:
	if [ -x $(PY) ]; then $(NEO4J) stop; fi

neo4j-reset: neo4j-stop
	rm -rf .neo4j

demo: $(STAMP)
	HF_HUB_OFFLINE=1 $(VENV)/bin/circuitatlas demo --out $(DEMO_DIR)

lint: $(STAMP)
	$(VENV)/bin/ruff check circuitatlas tests benchmarks tools/neo4j
	$(VENV)/bin/ruff format --check circuitatlas tests benchmarks tools/neo4j

# the live Neo4j tests (tests/neo4j/) find the server through .neo4j/env
test: $(STAMP) $(CYPHER_LINT) $(CHROMIUM) lint neo4j
	. ./.neo4j/env && HF_HUB_OFFLINE=1 $(PY) -m pytest -q

bench: $(STAMP) neo4j
	HF_HUB_OFFLINE=1 $(PY) benchmarks/sweep.py
	. ./.neo4j/env && $(PY) benchmarks/store.py
	$(PY) benchmarks/analytics.py --scratch-neo4j
	$(PY) benchmarks/paths.py
	HF_HUB_OFFLINE=1 $(PY) benchmarks/circuits.py --quick
	$(PY) benchmarks/scale.py

clean: neo4j-stop
	rm -rf .neo4j tools/neo4j/target $(VENV) $(DEMO_DIR) .pytest_cache tools/cypher-lint/node_modules
