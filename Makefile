# Development tasks for durable_ext. Every target is idempotent: once the virtualenv and
# node_modules are in place, `make test` only runs lint and the tests.

SHELL := /bin/bash
.DEFAULT_GOAL := test
.DELETE_ON_ERROR:

PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV := .venv
VENV_STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.package-lock.json
# Where `make run` serves the app.
RUN_HOST ?= 127.0.0.1
RUN_PORT ?= 7071

export PIP_DISABLE_PIP_VERSION_CHECK := 1
export npm_config_fund := false
export npm_config_audit := false
export npm_config_update_notifier := false

AZURITE_FLAGS := --silent --location .azurite --disableTelemetry --skipApiVersionCheck \
	--blobHost 127.0.0.1 --blobPort 10000 \
	--queueHost 127.0.0.1 --queuePort 10001 \
	--tableHost 127.0.0.1 --tablePort 10002

.PHONY: venv node_modules lint test test-slow azurite run bench bench-report chaos clean distclean infra-check \
	browser dashboard-screenshots

## venv: create .venv (if missing) and install the package with its dev extra, at the versions
## pinned in constraints.txt
venv: $(VENV_STAMP)

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

# Reinstall only when pyproject.toml or constraints.txt changed since the last install.
$(VENV_STAMP): pyproject.toml constraints.txt | $(VENV)/bin/python
	$(VENV)/bin/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $@

## node_modules: install Azurite exactly as pinned in package-lock.json
node_modules: $(NODE_STAMP)

$(NODE_STAMP): package-lock.json
	npm ci --no-audit --no-fund
	touch $@

## lint: ruff + mypy, and eslint on the dashboard's scripts
lint: venv node_modules
	$(VENV)/bin/ruff check durable_ext harness tests bench tools function_app function_app.py
	$(VENV)/bin/mypy durable_ext harness
	node_modules/.bin/eslint durable_ext/dashboard/static tests/dashboard

## browser: Debian's chromium for the dashboard's browser tests (apt-get, only when missing;
## Playwright drives it and never downloads a browser of its own)
CHROMIUM := /usr/bin/chromium
browser:
	@test -x $(CHROMIUM) || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; }

## test: lint, then the test suite (starts its own private Azurite); the scenarios marked
## `slow` run in `make test-slow`, which CI runs as well
test: venv node_modules browser lint infra-check
	node --test tests/dashboard/logic.test.mjs
	$(VENV)/bin/pytest -q -m 'not slow'

## test-slow: the long scenarios (marked `slow`) that `make test` leaves out; CI runs them
test-slow: venv node_modules
	$(VENV)/bin/pytest -q -m slow

## infra-check: checkov on the Bicep in infra/ (its own venv, .venv-checkov: its pins clash with
## ours); fails unless it runs checks and none fails (skips carry their reason in place)
CHECKOV_VENV := .venv-checkov
CHECKOV_VERSION := 3.3.30
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed-$(CHECKOV_VERSION)

$(CHECKOV_STAMP):
	rm -rf $(CHECKOV_VENV)
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet 'checkov==$(CHECKOV_VERSION)'
	touch $@

infra-check: $(CHECKOV_STAMP)
	$(CHECKOV_VENV)/bin/python tests/infra/checkov_gate.py $(CHECKOV_VENV)/bin/checkov infra

## azurite: run Azurite in the foreground on the default ports, data in .azurite/
azurite: node_modules
	mkdir -p .azurite
	node_modules/.bin/azurite $(AZURITE_FLAGS)

## run: serve the sample app (function_app/) with the local host; it starts Azurite itself
run: venv node_modules local.settings.json
	@echo "Then, in another terminal:"
	@echo "  curl -X POST http://$(RUN_HOST):$(RUN_PORT)/api/orchestrators/hello_sequence"
	$(VENV)/bin/durable-ext start --host $(RUN_HOST) --port $(RUN_PORT)

# The local app settings (gitignored); made once from the sample, never overwritten.
local.settings.json:
	cp local.settings.sample.json $@

## dashboard-screenshots: docs/img/dashboard-*.png, the dashboard's views (docs/dashboard.md), taken
## in headless chromium from durable-ext start on a private Azurite
dashboard-screenshots: venv node_modules browser
	$(VENV)/bin/python -m tests.dashboard.screenshots

## bench: the benchmark suite, us vs peers (~15 min): bench/results.json, docs/performance.{md,png}
BENCH_STAMP := $(VENV)/.bench-installed
$(BENCH_STAMP): pyproject.toml constraints.txt | $(VENV_STAMP)
	$(VENV)/bin/python -m pip install --quiet -c constraints.txt -e '.[dev,bench]'
	touch $@

bench: venv node_modules $(BENCH_STAMP)
	$(VENV)/bin/python -m bench

## bench-report: re-render docs/performance.{md,png} from bench/results.json (runs no benchmark)
bench-report: venv $(BENCH_STAMP)
	$(VENV)/bin/python -m bench.report

## chaos: the long chaos run (~10 min): a no-fault phase with 3 s visibility timeouts (each activity
## and event exactly once), then kills, crash points, zombies, lease faults, duplicate and poison
## messages, a storage outage; checks the invariants and rewrites docs/reliability.md
chaos: venv node_modules
	$(VENV)/bin/python -m tests.reliability.chaos --workers 3 --instances 2000 --kill-every 20 \
		--report docs/reliability.md

.PHONY: lock test-min dist package

## lock: re-resolve constraints.txt, the exact versions of everything we install (runtime, dev,
## bench); existing pins are kept unless LOCK_FLAGS=--upgrade
LOCK_FLAGS ?=
lock: venv
	$(VENV)/bin/uv pip compile pyproject.toml --all-extras --python-version 3.11 --quiet \
		--custom-compile-command "make lock" $(LOCK_FLAGS) -o constraints.txt

## test-min: the core tests on the lowest versions pyproject.toml allows (a venv of its own)
MIN_VENV := build/venv-min
MIN_TESTS := tests/storage/test_task_hub.py tests/storage/test_layout.py tests/storage/test_rest.py \
	tests/storage/test_connection.py tests/storage/test_payload_blobs.py \
	tests/worker/test_patterns_end_to_end.py tests/app tests/http/test_start_and_status.py \
	tests/functions_host/test_sample_app.py tests/test_readme.py
test-min: venv node_modules
	rm -rf $(MIN_VENV)
	$(VENV)/bin/uv venv --quiet --python $(PYTHON) $(MIN_VENV)
	$(VENV)/bin/uv pip install --quiet --python $(MIN_VENV)/bin/python \
		--resolution lowest-direct -e '.[test]'
	$(MIN_VENV)/bin/python -m tests.packaging.check_lowest
	$(MIN_VENV)/bin/python -m pytest -q -p no:cacheprovider $(MIN_TESTS)

## dist: sdist + wheel in dist/, twine check, the wheel's contents, then the README example from
## a fresh venv with only the wheel installed, against Azurite
DIST_VENV := build/venv-dist
dist: venv node_modules
	rm -rf dist $(DIST_VENV) && mkdir -p build
	$(VENV)/bin/python -m build --installer uv --outdir dist . > build/dist.log 2>&1 || { cat build/dist.log; exit 1; }
	$(VENV)/bin/twine check --strict dist/*
	$(VENV)/bin/uv venv --quiet --python $(PYTHON) $(DIST_VENV)
	$(VENV)/bin/uv pip install --quiet --python $(DIST_VENV)/bin/python -c constraints.txt dist/*.whl
	$(VENV)/bin/python -m tests.packaging.check_dist dist $(DIST_VENV)

## package: the deployable zip (build/function-app.zip): the app files .funcignore lets through,
## plus .python_packages/ with the wheel and requirements.txt installed for Linux x86_64 CPython
## 3.11; then unpacks it and runs it through the fake Functions host against Azurite
package: dist
	$(VENV)/bin/python -m tools.app_zip --wheel dist/*.whl --out build/function-app.zip
	$(VENV)/bin/python -m tests.packaging.check_app_zip build/function-app.zip

## clean: remove caches and build output (keeps .venv, node_modules and .azurite data)
clean:
	rm -rf build dist .pytest_cache .mypy_cache .ruff_cache *.egg-info
	find . -path ./.venv -prune -o -path ./node_modules -prune -o \
		-type d -name __pycache__ -prune -exec rm -rf {} +

## distclean: clean, and also remove .venv, node_modules and .azurite
distclean: clean
	rm -rf $(VENV) $(CHECKOV_VENV) node_modules .azurite
