# taskforce — the two commands are `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)
PYTEST_ARGS ?=

.PHONY: run test up down status bench lint schemas test-unit test-integration test-faults test-browser clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' || \
		{ echo "Python 3.11 is required (found $$($(PYTHON) --version))"; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "Installing pinned dependencies into $(VENV) ..."
	@$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@rm -f $(VENV)/.installed-* && touch $@

## make run: install, start the stack, publish the demo, show the summaries and reports
run: $(STAMP)
	@$(PY) -m taskforce.stack up
	@$(VENV)/bin/taskforce demo

## make test: install and run the whole suite (lint, unit, integration, e2e, faults)
test: $(STAMP) lint
	@$(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	@$(VENV)/bin/ruff check .

test-unit: $(STAMP)
	@$(PY) -m pytest -m unit $(PYTEST_ARGS)

test-integration: $(STAMP)
	@$(PY) -m pytest -m "integration or e2e" $(PYTEST_ARGS)

test-faults: $(STAMP)
	@$(PY) -m pytest -m faults -p no:randomly $(PYTEST_ARGS)

## make test-browser: install Debian's chromium, then run the browser test
test-browser: $(STAMP)
	@command -v chromium >/dev/null || { apt-get update -qq && apt-get install -y -qq chromium; }
	@$(PY) -m pytest -m browser $(PYTEST_ARGS)

up: $(STAMP)
	@$(PY) -m taskforce.stack up

down:
	@if [ -x $(PY) ]; then $(PY) -m taskforce.stack down; fi

status: $(STAMP)
	@$(PY) -m taskforce.stack status

bench: $(STAMP)
	@$(PY) -m bench

schemas: $(STAMP)
	@$(PY) -m schemas.generate

clean: down
	rm -rf run build *.egg-info
