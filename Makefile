# Every target sets itself up: a fresh machine needs only `make demo` or `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SYSTEM_PYTHON ?= python3

.PHONY: setup system-deps asyncapi-specs demo test test-fast lint bench docs clean

# The official AsyncAPI JSON Schemas (npm @asyncapi/specs), fetched, never copied into the repo:
# tests/catalog/test_asyncapi.py validates `exchange services asyncapi` against them.
ASYNCAPI_SPECS_VERSION := 6.11.1
ASYNCAPI_SPECS := .cache/asyncapi-specs
ASYNCAPI_STAMP := $(ASYNCAPI_SPECS)/fetched-$(ASYNCAPI_SPECS_VERSION)

$(STAMP): pyproject.toml constraints.txt
	$(SYSTEM_PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[test]'
	touch $(STAMP)

setup: system-deps $(STAMP) asyncapi-specs

asyncapi-specs: $(ASYNCAPI_STAMP)

$(ASYNCAPI_STAMP):
	rm -rf $(ASYNCAPI_SPECS) && mkdir -p $(ASYNCAPI_SPECS)
	cd $(ASYNCAPI_SPECS) && npm pack --silent @asyncapi/specs@$(ASYNCAPI_SPECS_VERSION) >/dev/null \
	  && tar xzf asyncapi-specs-$(ASYNCAPI_SPECS_VERSION).tgz && rm asyncapi-specs-*.tgz
	touch $@

# xmlsec1 and openssl are the independent peers of the interop tests; npm fetches the AsyncAPI
# schemas; chromium is the browser the console's Playwright tests drive (Debian's). Only what is
# missing is installed: a machine whose Node.js comes from NodeSource has npm already, and
# Debian's npm package conflicts with it.
SYSTEM_TOOLS := xmlsec1 openssl npm chromium
system-deps:
	@missing=""; for tool in $(SYSTEM_TOOLS); do command -v $$tool >/dev/null || missing="$$missing $$tool"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  else \
	    echo "Install$$missing (e.g. sudo apt-get install$$missing), then rerun."; exit 1; \
	  fi; \
	fi

demo: setup
	$(VENV)/bin/exchange demo

lint: setup
	$(VENV)/bin/ruff check exchange adapters tests benchmarks examples
	$(VENV)/bin/ruff format --check exchange adapters tests benchmarks examples
	$(VENV)/bin/mypy

test: setup lint
	$(PY) -m pytest

test-fast: setup
	$(PY) -m pytest -m "not slow and not chaos"

# Issue 17's targets, each a ratio measured side by side in one run (printed beside it).
bench: setup
	$(PY) benchmarks/bench_signing.py
	$(PY) benchmarks/bench_bus.py
	$(PY) benchmarks/bench_audit.py
	$(PY) benchmarks/bench_rss.py

# docs/configuration.md from the settings classes (tests/test_docs.py fails when it is stale).
docs: setup
	$(PY) scripts/gen_config_docs.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache $(ASYNCAPI_SPECS)
