# genjobs — everyday commands. `make run` serves the API locally; `make test` runs the test suite.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
BENCH_VENV ?= .venv-bench
BENCH_STAMP := $(BENCH_VENV)/.installed
PORT ?= 3000
MERCHANT ?= acme
SCOPE ?=
ENV ?= dev
PART ?= all
PYTEST_ARGS ?=
FUZZ_EXAMPLES ?= 2000
STATEFUL_EXAMPLES ?= 300
STATEFUL_STEPS ?= 50

.PHONY: help install run token test lint format validate build check-deploy lock-layer migrate openapi bench fuzz load deploy clean floors console-screenshots

help:
	@grep -E '^[a-z]+:.*?## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	@$(PY) -m pip install --quiet --disable-pip-version-check -e ".[dev]"
	@touch $(STAMP)

install: $(STAMP) ## create the virtualenv and install the project with its dev tools

run: $(STAMP) ## serve the HTTP API on 127.0.0.1:$(PORT) over an embedded PostgreSQL (data in .local/)
	@PORT=$(PORT) $(PY) -m local_runner

token: $(STAMP) ## print a local bearer token: make token MERCHANT=acme (operators: SCOPE=genjobs/admin)
	@$(PY) -m local_runner token $(MERCHANT) --scope "$(SCOPE)"

openapi: $(STAMP) ## write docs/openapi.json, the OpenAPI document merged from every function's resolver
	@$(PY) -m local_runner openapi

migrate: $(STAMP) ## apply sql/ migrations (DATABASE_URL, or the embedded server under .local/)
	@$(PY) -m local_runner migrate

test: $(STAMP) ## run the whole test suite on a real PostgreSQL (embedded unless DATABASE_URL is set)
	@$(PY) -m pytest $(PYTEST_ARGS)

console-screenshots: $(STAMP) ## run the console's browser tests and save the main pages' screenshots in docs/console/
	@CONSOLE_SCREENSHOT_DIR=docs/console $(PY) -m pytest tests/e2e/console -q $(PYTEST_ARGS)

fuzz: $(STAMP) ## schemathesis (FUZZ_EXAMPLES=2000 per operation) and the lifecycle state machine (STATEFUL_EXAMPLES=300 of STATEFUL_STEPS=50); make test runs 25 and 15x20
	@FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) STATEFUL_EXAMPLES=$(STATEFUL_EXAMPLES) STATEFUL_STEPS=$(STATEFUL_STEPS) \
		STATEFUL_SEED=random $(PY) -m pytest tests/e2e/test_fuzz.py tests/integration/test_lifecycle_stateful.py \
		tests/e2e/test_hostile_corpus.py --timeout=3600 $(PYTEST_ARGS)

load: $(STAMP) ## 16 clients for 60 s on the local runner, then the data checks (LOAD_CLIENTS, LOAD_SECONDS)
	@$(PY) -m tests.load

lint: $(STAMP) ## ruff and mypy
	@$(VENV)/bin/ruff check .
	@$(VENV)/bin/mypy layers/shared/genjobs functions local_runner tests

# The lowest versions pyproject.toml allows (name>=X -> name==X) in their own venv: an API the code uses that a
# floor lacks fails here, not in a deploy that resolved an older version.
FLOORS_VENV ?= .venv-floors
floors: ## install the floor of every runtime dependency and run each function against it (tools/check_floors.py)
	@test -x $(FLOORS_VENV)/bin/python || $(PYTHON) -m venv $(FLOORS_VENV)
	@echo '*' > $(FLOORS_VENV)/.gitignore
	@$(PYTHON) -c 'import re, tomllib; deps = tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]; print("\n".join(re.sub(r">=([^,<]+).*", r"==\1", d) for d in deps))' > $(FLOORS_VENV)/floors.txt
	@$(FLOORS_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r $(FLOORS_VENV)/floors.txt
	@PYTHONWARNINGS=ignore $(FLOORS_VENV)/bin/python tools/check_floors.py

# The benchmarks get their own venv: pgqueuer and procrastinate (the yardsticks) never enter .venv, so
# `make test` cannot import them. The venv ignores itself (.gitignore inside it).
$(BENCH_STAMP): pyproject.toml
	@test -x $(BENCH_VENV)/bin/python || $(PYTHON) -m venv $(BENCH_VENV)
	@echo '*' > $(BENCH_VENV)/.gitignore
	@$(BENCH_VENV)/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	@$(BENCH_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -e ".[dev,bench]"
	@touch $(BENCH_STAMP)

bench: $(BENCH_STAMP) ## benchmarks, results appended to bench/RESULTS.md: make bench PART=all|pool|roundtrips|overhead|longpoll|lifecycle|coldstart|scale|webhooks
	@PART=$(PART) $(BENCH_VENV)/bin/python -m bench

format: $(STAMP)
	@$(VENV)/bin/ruff check --fix .
	@$(VENV)/bin/ruff format .

validate: ## sam validate --lint and cfn-lint (tools in their own venv, .tools/)
	@bash scripts/validate.sh

build: ## sam build for arm64 python3.12, no Docker
	@bash scripts/build.sh

check-deploy: ## offline deploy checks: every samconfig.toml environment, the SAM-transformed template, checkov
	@bash scripts/check-deploy.sh

lock-layer: ## re-pin the layer's dependencies (layers/shared/requirements.lock, certs.lock) for Lambda arm64
	@bash scripts/lock-layer.sh

deploy: build ## deploy with SAM, then upload the console: make deploy ENV=dev (needs AWS credentials, the AWS CLI)
	@.tools/bin/sam deploy --config-env $(ENV)
	@bash scripts/deploy-console.sh $(ENV)

clean:
	rm -rf .aws-sam .pytest_cache .mypy_cache .ruff_cache
