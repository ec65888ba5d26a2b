# The two commands of the README:  `make demo`  and  `make test`.
# Both set up .venv from the lock file on first use, so a fresh clone needs only Python 3.11+.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo serve test lint typecheck contracts unit nightly lock i18n clean bench-synapse

$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --require-hashes -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .
	touch $(STAMP)

## Serve the demo world on the embedded default (SQLite under ./data) at http://127.0.0.1:8000
demo: $(STAMP)
	$(BIN)/omo demo

serve: $(STAMP)
	$(BIN)/omo serve

## The whole test suite: lint, format, types, layering, then pytest (SQLite, plus
## PostgreSQL + Redis when OMO_TEST_POSTGRES_URL / OMO_TEST_REDIS_URL are set).
test: $(STAMP) lint typecheck contracts unit

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

contracts: $(STAMP)
	$(BIN)/lint-imports

tests/web/node_modules: tests/web/package-lock.json
	-command -v npm >/dev/null && npm ci --prefix tests/web --no-audit --no-fund --silent

unit: $(STAMP) tests/web/node_modules
	$(BIN)/pytest -n 2 --dist loadgroup -p no:cacheprovider $(PYTEST_ARGS)

## Matrix Synapse, the messaging benchmark's peer, in its own virtualenv (bench only).
SYNAPSE_VERSION ?= 1.163.2
bench-synapse: .venv-synapse/bin/python
.venv-synapse/bin/python:
	$(PYTHON) -m venv .venv-synapse
	.venv-synapse/bin/pip install --quiet "matrix-synapse==$(SYNAPSE_VERSION)"

## The nightly profile: a much larger fuzzing budget per operation.
nightly: $(STAMP)
	OMO_FUZZ_EXAMPLES=200 $(BIN)/pytest -p no:cacheprovider tests/safety/test_contract_fuzzing.py

## Re-pin dependencies with hashes (needs pip-tools): run after editing pyproject.toml.
lock:
	$(BIN)/pip install --quiet pip-tools
	$(BIN)/pip-compile --quiet --generate-hashes --allow-unsafe --extra dev -o requirements.lock pyproject.toml

i18n: $(STAMP)
	$(BIN)/omo i18n extract && $(BIN)/omo i18n update && $(BIN)/omo i18n compile

clean:
	rm -rf $(VENV) data
