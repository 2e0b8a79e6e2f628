# Every target sets itself up: a fresh machine needs only python3 (3.11+), node/npm and make.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed
# jsii runs on the project-local Node 22 (Node 20 is end-of-life and prints a warning on every synth).
export JSII_NODE := $(CURDIR)/node_modules/.bin/node
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 1
export CDK_DISABLE_CLI_TELEMETRY := true
export CDK_DISABLE_VERSION_CHECK := 1
CDK := PATH=$(CURDIR)/node_modules/.bin:$$PATH $(CURDIR)/node_modules/.bin/cdk --no-notices

.PHONY: setup browser demo test lint unit integration infra-tests e2e synth bench scorecard schemas clean

setup: $(STAMP) $(NODE_STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

$(NODE_STAMP): package.json
	npm install --no-audit --no-fund --loglevel=error
	touch $@

# Debian's chromium for the finance report's browser tests (tests/*/test_finance_report*).
browser:
	scripts/ensure-chromium

demo: setup
	$(BIN)/pssync demo

lint: setup
	$(BIN)/ruff check shared functions infra tests bench scorecard
	$(BIN)/ruff format --check shared functions infra tests bench scorecard
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

test: lint browser
	$(BIN)/pytest

unit: setup
	$(BIN)/pytest tests/unit

integration: setup browser
	$(BIN)/pytest tests/integration

infra-tests: setup
	$(BIN)/pytest tests/infra

e2e: setup browser
	$(BIN)/pytest tests/e2e

schemas: setup
	$(BIN)/pssync schemas write

synth: setup
	$(CDK) synth --quiet

bench: setup
	$(BIN)/python -m bench

scorecard: setup
	$(BIN)/python -m scorecard

clean:
	rm -rf build cdk.out .mypy_cache .ruff_cache
