# Corral: `make run` starts the gateway on embedded defaults; `make test` runs everything.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml sdk/pyproject.toml requirements.lock 2>/dev/null | cksum | cut -d' ' -f1)

.PHONY: run test test-vllm lint unit bench soak install lock clean

$(PY):
	python3 -m venv $(VENV)

# Dependencies come from the hash-locked requirements.lock (regenerate with `make lock`);
# the two projects themselves are installed editable on top, without resolving again.
$(STAMP): $(PY) pyproject.toml sdk/pyproject.toml requirements.lock
	$(PIP) install -q --require-hashes -r requirements.lock
	$(PIP) install -q --no-deps -e . -e ./sdk
	@touch $(STAMP)

lock: $(PY)
	$(PIP) install -q pip-tools
	$(VENV)/bin/pip-compile -q --generate-hashes --allow-unsafe --strip-extras --no-emit-index-url \
		--no-emit-find-links --extra dev --extra pydantic -o requirements.lock pyproject.toml sdk/pyproject.toml

install: $(STAMP)

run: install
	$(VENV)/bin/corral serve

lint: install
	$(VENV)/bin/ruff check gateway tests loadtests sdk
	$(VENV)/bin/ruff format --check gateway tests loadtests sdk
	$(VENV)/bin/mypy
	cd sdk && ../$(VENV)/bin/mypy

unit: install
	$(VENV)/bin/python -m pytest -q tests sdk/tests

test: install lint unit

bench: install
	$(PY) -m loadtests.bench

VLLM_VENV ?= .venv-vllm

# The self-hosted pool against two real vLLM replicas (the CPU build of vLLM, a tiny
# random-weight model built at test time): about 80 s to install the vLLM venv once (3.5 GB),
# then about 2 minutes. Not part of `make test`; .ci/run runs it after.
test-vllm: install
	VLLM_VENV=$(VLLM_VENV) bash tests/vllm_real/install.sh
	CORRAL_VLLM_REAL=1 VLLM_VENV=$(VLLM_VENV) $(PY) -m pytest -q tests/vllm_real $(VLLM_ARGS)

# Ten minutes of mixed traffic through two replicas x two workers on the local PostgreSQL
# and Redis; exits non-zero on missing ledger rows, unexpected errors or RSS growth.
# SOAK_ARGS passes options, e.g. make soak SOAK_ARGS="--minutes 2 --concurrency 16".
soak: install
	$(PY) -m loadtests.soak --minutes 10 $(SOAK_ARGS)

clean:
	rm -rf $(VENV) $(VLLM_VENV) .venv-llamaindex tests/clients/node/node_modules corral.db corral-usage.journal
