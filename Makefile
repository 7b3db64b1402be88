# pgmemo — the two commands: `make demo` (the main job on the embedded default) and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
PGMEMO := $(VENV)/bin/pgmemo
EXTRAS ?= dev,local,langchain,mcp
STAMP := $(VENV)/.pgmemo-installed

.PHONY: help install system-deps citus test lint pgtap pytest demo bundle bundle-check bench bench-full bench-citus eval docs up down clean

help:
	@echo "make demo     run the main job offline on the embedded PostgreSQL"
	@echo "make test     install everything needed, then sqlfluff + pgTAP + pytest"
	@echo "make install  virtualenv + pip install -e '.[$(EXTRAS)]' + pgTAP (apt, as root)"
	@echo "make citus CITUS_SRC=<tarball|folder>  build Citus into the embedded PostgreSQL (once)"
	@echo "make lint | pgtap | pytest | bundle | docs | bench | bench-full | bench-citus | up | down"

install: $(STAMP) system-deps

# Re-run pip only when pyproject.toml changes (idempotent, fast when nothing changed).
$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e '.[$(EXTRAS)]'
	@touch $@

# pgTAP from Debian (the SQL under /usr/share/postgresql/15/extension, and pg_prove).
system-deps:
	@if [ -f /usr/share/postgresql/15/extension/pgtap.control ] && command -v pg_prove >/dev/null; then \
		: ; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing pgTAP (apt-get install postgresql-15-pgtap pgtap)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-15-pgtap pgtap >/dev/null; \
	else \
		echo "pgTAP missing: run as root, or: sudo apt-get install postgresql-15-pgtap pgtap" >&2; \
	fi

# Citus (the distributed tests, python/tests/test_citus*.py): built from CITUS_SRC, a release
# tarball or source folder, into this virtualenv's embedded PostgreSQL; cached (a second run
# with the same version does nothing). Without it those tests are skipped with a message.
CITUS_SRC ?=

citus: $(STAMP)
	@test -n "$(CITUS_SRC)" || { echo "make citus needs CITUS_SRC=<citus tarball or source folder>" >&2; exit 1; }
	tools/build_citus.sh "$(CITUS_SRC)" $(VENV)

test: install $(if $(CITUS_SRC),citus) lint bundle-check
	$(PY) -m pytest -q

pytest: install
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/sqlfluff lint sql migrations python/pgmemo/bootstrap.sql

pgtap: install
	$(PY) -m pytest -q python/tests/test_pgtap.py

# install.sql: the single-file psql installer (same ledger as `pgmemo migrate`).
bundle: $(STAMP)
	$(PGMEMO) migrate --print-sql > install.sql

bundle-check: $(STAMP)
	@$(PGMEMO) migrate --print-sql | diff -q - install.sql >/dev/null || \
		{ echo "install.sql is out of date: run make bundle" >&2; exit 1; }

demo: install
	$(PY) -m pgmemo.demo

# The benchmark suite (bench/run.py): BENCHMARKS.md + bench/results/. Needs the bench extras.
BENCH_DEPS := 'matplotlib>=3.7' 'faiss-cpu>=1.8'
PGAI_VENV := .venv-pgai

bench: install $(PGAI_VENV)/.installed
	$(PIP) install -q $(BENCH_DEPS)
	$(PY) bench/run.py $(BENCH_ARGS)
	$(PY) bench/storage.py
	$(PY) bench/filter.py
	$(PY) bench/trust.py
	$(PY) bench/stale_rename.py --write
	$(PY) bench/embedq.py --pgai-venv $(PGAI_VENV) $(QUEUE_BENCH_ARGS)

# Timescale's pgai vectorizer, the embedding queue's contender (bench/embedq.py), in a virtualenv
# of its own (its dependencies are not pgmemo's). If it cannot be installed, bench/embedq.py says
# so in its results and measures pgmemo against its previous version only.
$(PGAI_VENV)/.installed:
	@test -x $(PGAI_VENV)/bin/python || $(PYTHON) -m venv $(PGAI_VENV)
	$(PGAI_VENV)/bin/pip install -q 'pgai[vectorizer-worker]==0.12.1' && touch $@ || \
		echo "pgai could not be installed: the queue benchmark runs without it" >&2

bench-full: install
	$(PIP) install -q $(BENCH_DEPS)
	$(PY) bench/run.py --full $(BENCH_ARGS)

# docs/SQL_REFERENCE.md from a freshly migrated scratch database (memory.api_reference()).
docs: $(STAMP)
	$(PY) -m pgmemo.docs --output docs/SQL_REFERENCE.md

# Single node against a Citus cluster (coordinator + 2 workers), same data: BENCHMARKS.md.
bench-citus: install $(if $(CITUS_SRC),citus)
	$(PY) bench/citus.py $(BENCH_ARGS)

eval: install
	$(PY) bench/quality.py
	$(PY) bench/text_write.py

up:
	docker compose -f docker/compose.yaml up -d --build

down:
	docker compose -f docker/compose.yaml down

clean:
	rm -rf $(VENV) build dist *.egg-info
