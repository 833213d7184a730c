# The two commands of the README: `make demo` (the whole job offline) and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test lint install clean

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) -m frlib demo --out runs/demo

test: $(STAMP)
	$(PY) -m ruff check frlib tests benchmarks
	$(PY) -m ruff format --check frlib tests benchmarks
	$(PY) -m pytest

lint: $(STAMP)
	$(PY) -m ruff check --fix frlib tests benchmarks
	$(PY) -m ruff format frlib tests benchmarks

clean:
	rm -rf runs data .pytest_cache test-output
