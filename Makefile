# Every target installs what it needs first, so each works on a fresh machine with only Python 3.11 and pip.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PG_TEST_URL := postgresql://duijie:duijie@127.0.0.1:5432/duijie

.PHONY: install run test lint bench demo demo-data clean

install: $(VENV)/.installed api/static/vendor/echarts/VERSION

# ECharts for the statistics page, from the npm registry with a pinned SHA-512 (Python only, no Node.js).
api/static/vendor/echarts/VERSION: scripts/fetch_echarts.py
	$(PYTHON) scripts/fetch_echarts.py

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

# Installs, loads the demo lists into an embedded SQLite database (once), runs one batch match and serves.
run: install
	$(VENV)/bin/duijie serve --demo

# As root (CI, a fresh machine) PostgreSQL, Chromium and CJK fonts come from Debian's packages, so the
# database tests run on both backends and the review page's browser tests run; elsewhere those are
# skipped unless DUIJIE_TEST_POSTGRES_URL points at a server and /usr/bin/chromium exists.
test: install
	@if [ "$$(id -u)" = 0 ]; then bash .ci/system-deps.sh; fi
	DUIJIE_TEST_POSTGRES_URL=$${DUIJIE_TEST_POSTGRES_URL:-$$([ "$$(id -u)" = 0 ] && echo $(PG_TEST_URL))} $(PY) -m pytest
	$(VENV)/bin/ruff check .

demo: install
	$(VENV)/bin/duijie demo

lint: install
	$(VENV)/bin/ruff check .

bench: install
	$(PY) -m pip install --quiet -e '.[bench]'
	$(PY) -m bench.quality
	$(PY) -m bench.colloquial
	$(PY) -m bench.train_quality
	$(PY) -m bench.learning
	$(PY) -m bench.speed --part lexical
	# The one-time encoding of the 81k business scopes takes about an hour on two cores; it resumes.
	$(PY) -m bench.speed --part encode
	$(PY) -m bench.speed --part hybrid
	$(PY) -m bench.load
	$(PY) -m bench.stats
	$(PY) -m bench.city --sizes 25000 50000 100000

demo-data: install
	$(PY) data/demo/generate.py

clean:
	rm -rf $(VENV) out build *.egg-info .pytest_cache .ruff_cache
