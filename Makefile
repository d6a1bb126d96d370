# rec-assets: `make run` materialises the whole graph for the latest scoring week; `make test` runs the tests.
# Both create .venv when it is missing or older than pyproject.toml, and reuse it otherwise.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export REC_HOME ?= $(CURDIR)/.rec_home
export DAGSTER_HOME ?= $(REC_HOME)/dagster_home

.PHONY: run backfill test ui bench compare venv clean reset chromium celery-deps celery-backfill

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

# LightFM 1.17 has no wheel for this Python: it builds against the venv's numpy and scipy.
PEERS_STAMP := $(VENV)/.peers_installed
$(PEERS_STAMP): $(STAMP)
	$(PY) -m pip install --quiet --disable-pip-version-check setuptools wheel numpy scipy
	$(PY) -m pip install --quiet --disable-pip-version-check --no-build-isolation 'lightfm==1.17'
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[peers]'
	touch $(PEERS_STAMP)

run: $(STAMP)
	$(PY) -m rec_assets.cli run

# every scoring week the source supports, one run per week (BACKFILL_ARGS="--first W --last W" narrows it)
backfill: $(STAMP)
	$(PY) -m rec_assets.cli backfill $(BACKFILL_ARGS)

# The UI tests drive Debian's Chromium through Playwright (which cannot download its own browser offline):
# installed here when missing and run as root on a Debian-like system, else stop with the command to run.
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Debian's chromium for the UI tests"; \
	    DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; \
	  else \
	    echo "the UI tests need Chromium: sudo apt-get install -y chromium chromium-driver"; exit 1; \
	  fi; }

# The Celery backfill (deploy/celery) needs the extra `celery` and Debian's redis-server (the broker): installed
# here, redis-server from apt when missing and run as root on a Debian-like system, else stop with the command.
CELERY_STAMP := $(VENV)/.celery_installed
$(CELERY_STAMP): $(STAMP)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[celery]'
	touch $(CELERY_STAMP)

celery-deps: $(CELERY_STAMP)
	@command -v redis-server >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Debian's redis-server for the Celery backfill"; \
	    DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null; \
	  else \
	    echo "the Celery backfill needs redis-server: sudo apt-get install -y redis-server"; exit 1; \
	  fi; }

# A backfill of scoring weeks on 2 Celery workers with a Redis broker, all on loopback, started and stopped here
# (deploy/celery/backfill.py). CELERY_ARGS="--weeks W1 W2 W3 --workers N --report FILE" changes what runs.
CELERY_WORK ?= $(REC_HOME)/celery
CELERY_ARGS ?= --weeks 2026-10-12 2026-10-19 2026-11-02 --workers 2
celery-backfill: celery-deps
	$(PY) deploy/celery/backfill.py --work $(CELERY_WORK) $(CELERY_ARGS)

# Two workers, one per core (the end-to-end tests also wait on subprocesses, daemons and brokers).
# Tests of one module, and every test of the session's materialised week, share a worker (conftest.py).
test: $(PEERS_STAMP) chromium celery-deps
	$(PY) -m pytest -q -n 2 --dist loadgroup

ui: $(STAMP)
	$(PY) -m rec_assets.cli ui

bench: $(STAMP)
	$(PY) -m rec_assets.bench.run_all

compare: $(PEERS_STAMP)
	$(PY) -m rec_assets.bench.compare --out results $(COMPARE_ARGS)

reset:
	rm -rf $(REC_HOME)

clean: reset
	rm -rf $(VENV)
