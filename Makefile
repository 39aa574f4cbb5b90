# Relais — two commands for a newcomer: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
# `make run PORT=8001` when 8000 is taken; HOST=0.0.0.0 to be reached from other machines
# (refused while SECRET_KEY is weak or published; unset, a random one is kept in ./var).
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: setup run test test-postgres demo openapi lint bench clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is needed")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

setup: $(STAMP)

## API + worker + scheduler on SQLite and a Redis started by the app (Ctrl-C stops all)
run: setup
	$(BIN)/relais run-embedded --host $(HOST) --port $(PORT)

## The whole suite (embedded default, or PostgreSQL/Redis when TEST_DATABASE_URL/TEST_REDIS_URL are set)
test: setup
	$(BIN)/pytest

## The suite on the machine's PostgreSQL and Redis (starts them if they are down)
test-postgres: setup
	bash .ci/services.sh
	TEST_DATABASE_URL=$${TEST_DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/postgres} \
	TEST_REDIS_URL=$${TEST_REDIS_URL:-redis://127.0.0.1:6379/15} $(BIN)/pytest

## Seed a demo agency with two brands and print a token (and a curl for the running `make run`)
demo: setup
	$(BIN)/relais db upgrade
	$(BIN)/relais demo

## Regenerate the committed OpenAPI spec
openapi: setup
	$(BIN)/python -m app.openapi_dump openapi/openapi.json

lint: setup
	$(BIN)/ruff check app workers tests benchmarks
	$(BIN)/ruff format --check app workers tests benchmarks

## By hand, on PostgreSQL: API throughput, then one brand's posts listed with 10k and 1M posts
bench: setup
	$(BIN)/python benchmarks/api_bench.py
	$(BIN)/python benchmarks/posts_bench.py

clean:
	rm -rf $(VENV) var .pytest_cache
