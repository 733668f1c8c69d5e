# circuitatlas — `make demo` runs the main job on the embedded default, `make test` runs the tests.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
DEMO_DIR ?= demo-run

.PHONY: install demo test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch first, pinned: the local CPU wheel, so no CUDA build is pulled in later
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	HF_HUB_OFFLINE=1 $(VENV)/bin/circuitatlas demo --out $(DEMO_DIR)

lint: $(STAMP)
	$(VENV)/bin/ruff check circuitatlas tests benchmarks
	$(VENV)/bin/ruff format --check circuitatlas tests benchmarks

test: $(STAMP) lint
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q

bench: $(STAMP)
	HF_HUB_OFFLINE=1 $(PY) benchmarks/sweep.py

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache
