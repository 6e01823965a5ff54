# One task runner for developers, CI and the README. `make help` lists the targets.
SHELL := /bin/bash
VENV  ?= .venv
PY    := $(VENV)/bin/python
PYTHON ?= python3
RUN_DIR ?= .run
export PIPELINE_RUN_DIR := $(RUN_DIR)

.DEFAULT_GOAL := help
.PHONY: help setup lock up down status restart run test scale-out test-unit test-integration chaos bench loadgen lint format

help: ## list the commands
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-17s %s\n", $$1, $$2}'

# Python dependencies come only from requirements.lock, every file checked against its hash;
# the project itself is installed without dependencies and without an unlocked build backend.
$(VENV)/.installed: pyproject.toml requirements.lock deploy/setup-system.sh
	bash deploy/setup-system.sh
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --require-hashes --no-deps -r requirements.lock
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	touch $@

setup: $(VENV)/.installed .cache/kafka-tools-libs ## install system packages (Java, Maven, Postgres) and the locked Python deps

# Kafka's own kafka-consumer-groups (jars of the broker's version), for `pipeline replay`
.cache/kafka-tools-libs: deploy/kafka/tools/pom.xml | $(VENV)/.installed
	$(PY) -m ops.kafka_tools fetch
	touch $@

lock: ## re-resolve requirements.lock and the image's runtime lock (hashes) after changing a dependency
	$(PYTHON) -m venv $(RUN_DIR)/uv && $(RUN_DIR)/uv/bin/pip install -q uv==0.13.8
	$(RUN_DIR)/uv/bin/uv pip compile pyproject.toml deploy/build-requirements.in \
	  --extra stack --extra dev --generate-hashes --python-version 3.11 -o requirements.lock
	$(RUN_DIR)/uv/bin/uv pip compile pyproject.toml deploy/build-requirements.in -c requirements.lock \
	  --generate-hashes --python-version 3.11 -o deploy/requirements-image.lock

up: setup ## start the local stack in the background (.run/stack.env), or restart its parts that are down
	$(PY) -m stack.cli up

down: ## stop the local stack
	@if [ -x $(PY) ]; then $(PY) -m stack.cli down; fi

status: setup ## show each part of the stack: up or down, since when, memory, ports
	$(PY) -m stack.cli status

restart: setup ## restart one part on its old ports, the rest keep running: make restart PART=streams
	@test -n "$(PART)" || { echo "make restart: name the part, e.g. make restart PART=streams"; exit 2; }
	$(PY) -m stack.cli restart $(PART)

run: setup ## the main job: the stack, a burst of signed webhooks, a summary of what landed
	$(PY) -m stack.demo

test: setup ## every test: unit, then integration on the real stack
	$(PY) -m pytest

scale-out: setup ## the scale-out test alone: two stream workers, one SIGKILLed (docs/scaling.md)
	$(PY) -m pytest tests/integration/test_scale_out.py

test-unit: setup ## unit tests only (nothing running)
	$(PY) -m pytest tests/unit

test-integration: setup ## integration tests on the real stack
	$(PY) -m pytest tests/integration

chaos: setup ## the full fault and hostile-input suite (CI runs a short subset in make test)
	CHAOS_FULL=1 $(PY) -m pytest tests/chaos

bench: setup ## every benchmark (each under 5 minutes); writes docs/benchmarks.md
	$(PY) -m bench.run

loadgen: setup ## signed webhook traffic against the running stack (make up first)
	set -a && . $(RUN_DIR)/stack.env && set +a && $(VENV)/bin/pipeline-loadgen $(ARGS)

lint: setup ## ruff (lint + format check) and mypy --strict
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: setup ## apply ruff's formatting and safe fixes
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .
