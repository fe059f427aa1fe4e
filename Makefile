# Corral: `make run` starts the gateway on embedded defaults; `make test` runs everything.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml sdk/pyproject.toml 2>/dev/null | cksum | cut -d' ' -f1)

.PHONY: run test lint unit bench install clean

$(PY):
	python3 -m venv $(VENV)

$(STAMP): $(PY) pyproject.toml
	$(PIP) install -q -e '.[dev]' -e './sdk[pydantic,dev]'
	@touch $(STAMP)

install: $(STAMP)

run: install
	$(VENV)/bin/corral serve

lint: install
	$(VENV)/bin/ruff check gateway tests loadtests sdk
	$(VENV)/bin/mypy
	cd sdk && ../$(VENV)/bin/mypy

unit: install
	$(VENV)/bin/python -m pytest -q tests sdk/tests

test: install lint unit

bench: install
	$(PY) -m loadtests.bench

clean:
	rm -rf $(VENV) corral.db corral-usage.journal
