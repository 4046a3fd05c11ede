# propylon: the two commands a new user runs are `make run` and `make test`.
# Everything they need is installed by the targets below (virtualenv, Python packages, a C
# compiler for the compiled request path, Debian's chromium for the browser tests and,
# for the benchmark smoke test, Debian's nginx and wrk).

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The editable install compiles setup.py's COMPILED modules in place (src/**/*.so), and a
# compiled module shadows its .py: so whenever the gateway's source changes (a compiled
# module, or one whose types they were compiled against), compile again.
COMPILED_STAMP := $(VENV)/.compiled
GATEWAY_SRC := $(shell find src/propylon -name '*.py')
PURE_MARK := $(VENV)/.pure-python
SERVICE_PKGS := $(wildcard services/*/pyproject.toml)

.PHONY: help install run test lint typecheck unit bench bench-quick bench-soak bench-faults bench-reload clean

help:
	@echo "make run          start the whole stack on this machine (Ctrl-C stops it)"
	@echo "make test         lint, type-check and run every test (what CI runs)"
	@echo "make bench        propylon vs nginx, full interleaved run (minutes)"
	@echo "make bench-quick  2-second smoke run of the benchmark harness"
	@echo "make bench-soak   5-minute memory soak at 500 connections"
	@echo "make bench-faults fault injection: kills, outages, slow hosts (about 1 minute)"
	@echo "make bench-reload 50 config reloads during 30 s of 64-connection load"

$(STAMP): Makefile pyproject.toml setup.py $(SERVICE_PKGS)
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "propylon needs Python 3.11 or newer (found $$($(PYTHON) --version))"; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV) || \
		{ echo "could not create a virtualenv: on Debian/Ubuntu install python3-venv"; exit 1; }
	@# setuptools too: the compile step below runs setup.py in this venv (not in pip's build
	@# environment), and pyproject's SPDX `license = "MIT"` needs setuptools 77 or newer.
	$(PY) -m pip install --quiet --upgrade pip 'setuptools>=77'
	@rm -f $(PURE_MARK); scripts/ensure-compiler $(PY) || { touch $(PURE_MARK); \
		echo "NOTE: no C compiler or Python headers here: propylon is installed as pure"; \
		echo "      Python (same behaviour, slower; see docs/performance.md)"; }
	@# Packages first (pure Python), then the compilation below, with every dependency
	@# installed so that mypyc sees their types.
	PROPYLON_PURE_PYTHON=1 $(PY) -m pip install --quiet -e '.[dev,redis,watch,otlp]' -e ./services/servicekit \
		-e './services/identity[postgresql,redis]' -e './services/profiles[postgresql]'
	@touch $(STAMP)

$(COMPILED_STAMP): $(STAMP) $(GATEWAY_SRC)
	@if [ -e $(PURE_MARK) ]; then :; else \
		echo "compiling the request path (mypyc)"; \
		$(PY) setup.py --quiet build_ext --inplace >$(VENV)/compile.log 2>&1 \
			|| { cat $(VENV)/compile.log; exit 1; }; fi
	@touch $(COMPILED_STAMP)

install: $(COMPILED_STAMP)

run: $(COMPILED_STAMP)
	$(PY) -m propylon.stack

lint: $(STAMP)
	$(VENV)/bin/ruff check setup.py src tests examples $(wildcard services) $(wildcard benchmarks)
	$(VENV)/bin/ruff format --check setup.py src tests examples $(wildcard services) $(wildcard benchmarks)

typecheck: $(STAMP)
	$(VENV)/bin/mypy
	$(VENV)/bin/mypy examples/plugins
	@for p in $(dir $(SERVICE_PKGS)); do \
		echo "mypy $$p"; (cd $$p && ../../$(VENV)/bin/mypy) || exit 1; done

unit: $(COMPILED_STAMP)
	@scripts/ensure-compose
	@scripts/ensure-chromium
	$(VENV)/bin/pytest -q

test: lint typecheck unit bench-quick

bench: $(COMPILED_STAMP)
	benchmarks/ensure-tools
	$(PY) benchmarks/bench.py

bench-quick: $(COMPILED_STAMP)
	@benchmarks/ensure-tools; rc=$$?; \
	if [ $$rc -eq 3 ]; then echo "SKIPPED bench-quick: nginx/wrk missing and cannot be installed (not root)"; \
	elif [ $$rc -ne 0 ]; then exit $$rc; \
	else $(PY) benchmarks/bench.py --quick; fi

bench-soak: $(COMPILED_STAMP)
	benchmarks/ensure-tools
	$(PY) benchmarks/bench.py --scenarios soak

# Real gateway and upstream processes on free ports, an asyncio load generator: no tools.
bench-faults: $(COMPILED_STAMP)
	$(PY) benchmarks/faults.py

# Needs no nginx or wrk: its own upstream and client, on free ports.
bench-reload: $(COMPILED_STAMP)
	$(PY) benchmarks/reload.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build dist src/*.egg-info
	find src -name '*.so' -delete
