# Integrations Hub — the two commands are `make run` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
CARGO ?= cargo
# The real moto_server executable (the pyenv shim's pid is not the server's).
MOTO_SERVER = $(shell pyenv which moto_server 2>/dev/null || command -v moto_server)

.PHONY: help deps run test lint fmt build bench clean

help:
	@echo "make run    - start moto, provision, serve every function on http://127.0.0.1:3000"
	@echo "make test   - lint, then every test: unit, end-to-end against moto, API fuzzing, event fixtures, OpenAPI validation"
	@echo "make lint   - cargo fmt --check, clippy -D warnings, cargo machete (unused dependencies), cfn-lint"
	@echo "make build  - release Lambda binaries of every function for arm64 (needs cargo-lambda)"
	@echo "make bench  - benchmarks (B1 inbound accept + cost per million, B2 signature verification CPU, B3 sync engine, B4 outgoing delivery, B5 cold start); report in target/bench/report.json"

# Installs what is missing: the Python tools of requirements-dev.txt (moto, boto3, cfn-lint,
# openapi-spec-validator, schemathesis, and standardwebhooks, the independent verifier of outgoing
# signatures in the tests). make test and make lint also install cargo-nextest and cargo-machete
# when missing.
deps:
	@$(PYTHON) -m pip --version >/dev/null 2>&1 || { echo "python3 with pip is required"; exit 1; }
	@missing=0; for tool in moto_server cfn-lint openapi-spec-validator schemathesis; do command -v $$tool >/dev/null 2>&1 || missing=1; done; \
	  $(PYTHON) -c "import moto, boto3, cfnlint, openapi_spec_validator, schemathesis, standardwebhooks" >/dev/null 2>&1 || missing=1; \
	  if [ $$missing = 1 ]; then echo "installing Python dev tools (requirements-dev.txt)"; \
	    $(PYTHON) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt; \
	    command -v pyenv >/dev/null 2>&1 && pyenv rehash || true; fi

run: deps
	$(CARGO) build -p hub-local
	./target/debug/hub-local

# Tests share one moto started here on a free port (each test uses its own table, key and queues).
# Among them, tests/tests/api_fuzz.rs runs schemathesis against a local stack (docs/api-fuzzing.md).
test: deps
	@command -v cargo-nextest >/dev/null 2>&1 || $(CARGO) install --locked cargo-nextest
	@command -v cargo-machete >/dev/null 2>&1 || $(CARGO) install --locked cargo-machete
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) machete
	cfn-lint infra/template.yaml
	openapi-spec-validator api/openapi.json
	@set -euo pipefail; \
	  port=$$($(PYTHON) -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'); \
	  mkdir -p target/test-moto; \
	  moto=$$(pyenv which moto_server 2>/dev/null || command -v moto_server); \
	  "$$moto" -H 127.0.0.1 -p $$port > target/test-moto/moto.log 2>&1 & moto_pid=$$!; \
	  trap 'kill $$moto_pid 2>/dev/null || true' EXIT; \
	  for i in $$(seq 1 300); do (exec 3<>/dev/tcp/127.0.0.1/$$port) 2>/dev/null && break; sleep 0.2; done; \
	  HUB_TEST_AWS_ENDPOINT=http://127.0.0.1:$$port $(CARGO) nextest run --workspace --no-fail-fast

# cargo machete: no declared dependency goes unused (installed like cargo-nextest, once).
lint:
	@command -v cargo-machete >/dev/null 2>&1 || $(CARGO) install --locked cargo-machete
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) machete
	cfn-lint infra/template.yaml

fmt:
	$(CARGO) fmt --all

# Deployable artifacts: cargo-lambda cross-compiles every function for Lambda's arm64
# (provided.al2023), one binary each in target/lambda/<function>/bootstrap. One cargo run per
# function: built together, Cargo would unify the shared crate's features, and every binary would
# link what only one function needs (the S3 SDK of the payloads bucket, the JSON Schema validator
# of actions).
LAMBDA_FUNCTIONS := integrations oauth inbound-webhook retry-dispatcher sync-runner
build:
	@command -v cargo-lambda >/dev/null 2>&1 || { echo "install cargo-lambda: pip install cargo-lambda (or cargo install cargo-lambda)"; exit 1; }
	set -e; for function in $(LAMBDA_FUNCTIONS); do cargo lambda build --release --arm64 --package $$function; done

# Benchmarks (docs/benchmarks.md: targets, method, results). B2 signature verification CPU:
# hub-bench runs the criterion benchmark (cargo bench -p hub-bench --bench verify, about 70 s of
# measurement) and reads its medians from target/criterion. B5 cold start: each measured function
# is built in a cargo run of its own (its own features, as `make build` deploys it), then the
# hello-world baseline, with the workspace release profile (LTO: minutes each on 2 cores); then
# hub-bench starts each against a local Lambda Runtime API. B4 outgoing
# delivery: the same release retry-dispatcher delivers events to a local sink through moto (the
# harness starts its own moto, or uses BENCH_AWS_ENDPOINT). B1 inbound accept path and the cost of
# a million webhooks: the local stack runs inside the (release) harness against a moto of its own
# (or BENCH_AWS_ENDPOINT). B3 sync engine: the engine runs inside the harness against a local
# provider and a moto of its own (or BENCH_AWS_ENDPOINT), its memory runs in child processes of
# the harness (about 2 minutes). hub-bench prints the tables and writes target/bench/report.json.
BENCH_FUNCTIONS := integrations retry-dispatcher inbound-webhook oauth sync-runner
BENCH_RUNS ?= 30
BENCH_WARMUP ?= 3
BENCH_B4_EVENTS ?= 1000
BENCH_B4_CONCURRENCY ?= 5
BENCH_B4_FAILURE_DEADLINE ?= 1800
bench: deps
	set -e; for function in $(BENCH_FUNCTIONS); do $(CARGO) build --release -p $$function; done
	$(CARGO) build --release -p hub-bench-hello
	$(CARGO) run --release -p hub-bench -- --baseline target/release/hub-bench-hello \
	  $(foreach f,$(BENCH_FUNCTIONS),--function $(f)=target/release/$(f)) \
	  --events events --runs $(BENCH_RUNS) --warmup $(BENCH_WARMUP) \
	  --b4-dispatcher target/release/retry-dispatcher --b4-events $(BENCH_B4_EVENTS) \
	  --b4-concurrency $(BENCH_B4_CONCURRENCY) --b4-failure-deadline $(BENCH_B4_FAILURE_DEADLINE) \
	  --b1 --b2 --b3 --report target/bench/report.json
