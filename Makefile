# Every target installs what it needs first, so each works on a fresh machine with only Python 3.11 and pip.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: install run test lint bench demo-data clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

run: install
	$(VENV)/bin/duijie demo

test: install
	$(PY) -m pytest
	$(VENV)/bin/ruff check .

lint: install
	$(VENV)/bin/ruff check .

bench: install
	$(PY) -m pip install --quiet -e '.[bench]'
	$(PY) bench/quality.py
	$(PY) bench/speed.py

demo-data: install
	$(PY) data/demo/generate.py

clean:
	rm -rf $(VENV) out build *.egg-info .pytest_cache .ruff_cache
