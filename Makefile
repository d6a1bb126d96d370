# rec-assets: `make run` materialises the whole graph for the latest scoring week; `make test` runs the tests.
# Both create .venv when it is missing or older than pyproject.toml, and reuse it otherwise.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export REC_HOME ?= $(CURDIR)/.rec_home
export DAGSTER_HOME ?= $(REC_HOME)/dagster_home

.PHONY: run test ui bench compare venv clean reset

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(PY) -m rec_assets.cli run

test: $(STAMP)
	$(PY) -m pytest -q

ui: $(STAMP)
	$(PY) -m rec_assets.cli ui

bench: $(STAMP)
	$(PY) -m rec_assets.bench.run_all

reset:
	rm -rf $(REC_HOME)

clean: reset
	rm -rf $(VENV)
