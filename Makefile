# Two commands on a fresh clone: `make demo` and `make test`.
# The development stack is pinned: torch 2.13.0 is a CPU build that pip finds on this
# machine's disk, so nothing downloads gigabytes; fastai 2.8.12 is known to work with it.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIN := torch==2.13.0 fastai==2.8.12

.PHONY: demo test lint bench clean

$(VENV)/.stack:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(PIN)
	touch $@

$(VENV)/.demo: $(VENV)/.stack pyproject.toml
	$(PY) -m pip install -q -e '.[demo]' $(PIN)
	touch $@

$(VENV)/.test: $(VENV)/.stack pyproject.toml
	$(PY) -m pip install -q -e '.[test]' $(PIN)
	touch $@

$(VENV)/.bench: $(VENV)/.stack pyproject.toml
	$(PY) -m pip install -q -e '.[bench]' $(PIN)
	touch $@

demo: $(VENV)/.demo
	$(VENV)/bin/lrrange demo --out docs/lr_range.png

test: $(VENV)/.test
	$(PY) -m ruff check .
	MPLBACKEND=Agg $(PY) -m pytest lrrange tests

lint: $(VENV)/.test
	$(PY) -m ruff check .

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
