# taskforce — the two commands are `make run` and `make test`.
SHELL := /bin/bash
# Python 3.11, 3.12 or 3.13 (pyproject.toml's requires-python): PYTHON if set, else the newest
# python3.13 / python3.12 / python3.11 / python3 on PATH that runs; tools/find-python says what
# it found, or what it tried and why none fits. A second environment beside .venv:
#   make test-unit PYTHON=python3.13 VENV=.venv-3.13
PYTHON ?=
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)
PYTEST_ARGS ?=
SCREENSHOTS := docs/screenshots

.PHONY: run test up down status bench lint schemas test-unit test-integration test-faults test-browser \
	check-wheels screenshots chromium stunnel clean fuzz fuzz-properties

$(STAMP): pyproject.toml
	@if [ ! -x $(PY) ]; then \
		python="$$(PYTHON='$(PYTHON)' tools/find-python)" || exit 1; \
		echo "Creating $(VENV) with $$python ..."; \
		"$$python" -m venv $(VENV) || { rm -rf $(VENV); echo "Could not create $(VENV) with $$python" \
			"(Debian and Ubuntu ship the venv module apart: apt-get install python3-venv)"; exit 1; }; \
	fi
	@PYTHON=$(PY) tools/find-python >/dev/null 2>&1 || { echo "$(VENV) is $$($(PY) --version 2>&1)," \
		"which taskforce does not support (pyproject.toml: requires-python):" \
		"remove it (rm -rf $(VENV)) and run make again"; exit 1; }
	@echo "Installing pinned dependencies into $(VENV) ($$($(PY) --version)) ..."
	@$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@rm -f $(VENV)/.installed-* && touch $@

## make run: install, start the stack, publish the demo, show the summaries and reports
run: $(STAMP)
	@$(PY) -m taskforce.stack up
	@$(VENV)/bin/taskforce demo

## make test: install and run the suite (lint, unit, integration, e2e; browser where chromium
## is installed). The fault scenarios (~5 min of process kills and outages) are a long run of
## their own, `make test-faults`, which .ci/run calls after this: make test stays < 15 min.
test: $(STAMP) lint stunnel
	@$(PY) -m pytest -m "not faults" $(PYTEST_ARGS)

## make lint: ruff, mypy (pyproject.toml's [tool.mypy]), and the pins against the recorded wheels
## (offline; make check-wheels is online)
lint: $(STAMP)
	@$(VENV)/bin/ruff check .
	@$(VENV)/bin/mypy
	@$(PY) -m tools.wheels check

test-unit: $(STAMP)
	@$(PY) -m pytest -m unit $(PYTEST_ARGS)

test-integration: $(STAMP) stunnel
	@$(PY) -m pytest -m "integration or e2e" $(PYTEST_ARGS)

## make test-faults: the fault scenarios, then the fuzzing properties at volume
test-faults: $(STAMP)
	@$(PY) -m pytest -m faults -p no:randomly $(PYTEST_ARGS)
	@$(MAKE) --no-print-directory fuzz-properties

## make test-flood: the flood scenario at 1,000,000 meetings (memory stays bounded)
test-flood: $(STAMP)
	@FLOOD_EVENTS=1000000 $(PY) -m pytest -m faults -k flood -p no:randomly $(PYTEST_ARGS)

## make fuzz-properties: the decode → DLQ fuzzing properties with >= 100,000 examples in all
fuzz-properties: $(STAMP)
	@HYPOTHESIS_PROFILE=fuzz $(PY) -m pytest tests/unit/schemas/test_fuzz_decode.py -p no:randomly -q $(PYTEST_ARGS)

## make fuzz: coverage-guided fuzzing of the decoder with atheris for FUZZ_SECONDS (x86_64 Linux;
## atheris is pinned in tools/fuzz-requirements.txt, not in pyproject: it has no wheels elsewhere)
FUZZ_SECONDS ?= 180
fuzz: $(STAMP)
	@$(PY) -m pip install --quiet --disable-pip-version-check -r tools/fuzz-requirements.txt
	@mkdir -p run/fuzz/corpus run/fuzz/crashes
	@set -o pipefail; $(PY) tests/fuzz/fuzz_decode.py -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
		-artifact_prefix=run/fuzz/crashes/ run/fuzz/corpus 2>&1 | grep -v "^#[0-9]" | tail -n 25
	@test -z "$$(ls run/fuzz/crashes)" || { echo "fuzzing found a failure: run/fuzz/crashes/"; exit 1; }

## Debian's chromium, and poppler-utils for pdftoppm (the report PDF's first page as PNG)
chromium:
	@{ command -v chromium && command -v pdftoppm; } >/dev/null || \
		{ apt-get update -qq && apt-get install -y -qq chromium poppler-utils; }

## make stunnel: Debian's stunnel4, the TLS terminator of the TLS/SASL tests (installed as root with
## apt-get; elsewhere it says why, and those tests skip with that reason)
stunnel:
	@tools/ensure-stunnel

## make test-browser: install Debian's chromium (and pdftoppm), then run the browser tests: the
## sign-in and report flow, axe-core's WCAG 2.1 AA rules, keyboard-only sign-in, the report PDF
test-browser: $(STAMP) chromium
	@$(PY) -m pytest -m browser $(PYTEST_ARGS)

## make screenshots: the browser test, writing the README's screenshots to docs/screenshots/
screenshots: $(STAMP) chromium
	@TASKFORCE_SCREENSHOTS=$(SCREENSHOTS) $(PY) -m pytest -m browser $(PYTEST_ARGS)
	@ls -l $(SCREENSHOTS)/*.png

## make check-wheels: every pin (and what it pulls in) has a binary wheel for each supported Python
## on manylinux x86_64 and aarch64, asked of PyPI now; records the answer in tools/wheels.json
check-wheels: $(STAMP)
	@$(PY) -m tools.wheels record

up: $(STAMP)
	@$(PY) -m taskforce.stack up

down:
	@if [ -x $(PY) ]; then $(PY) -m taskforce.stack down; fi

status: $(STAMP)
	@$(PY) -m taskforce.stack status

bench: $(STAMP)
	@$(PY) -m pip install --quiet --disable-pip-version-check -r tools/bench-requirements.txt
	@$(PY) -m bench

schemas: $(STAMP)
	@$(PY) -m schemas.generate

clean: down
	rm -rf run build *.egg-info
