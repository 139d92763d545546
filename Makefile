# botscore: the two commands a new user needs are `make run` and `make test`.
# Everything else is a step they call; each installs only what is missing.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

VENV ?= .venv
PY := $(VENV)/bin/python
export BOTSCORE_CACHE ?= $(HOME)/.cache/botscore
export BOTSCORE_STATE ?= $(CURDIR)/.stack
# bin/ holds our `storm` launcher; the venv holds sparse, streamparse_run and botscore.
export PATH := $(CURDIR)/bin:$(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: help run test up down status deps venv storm unit integration lint proto model bench

help:
	@echo "make run    start the services, run the scoring topology locally, feed users, show scores"
	@echo "make test   run lint, unit and integration tests (starts the services)"
	@echo "make up | down | status    manage Kafka and Redis;  make proto | model | bench"

run: up
	stack/run-local.sh

test: up lint
	$(PY) -m pytest

unit: venv
	$(PY) -m pytest -m "not integration"

integration: up
	$(PY) -m pytest -m integration

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

up: deps venv storm
	stack/kafka/kafka.sh start
	stack/redis/redis.sh start
	$(VENV)/bin/botscore topics

down:
	stack/kafka/kafka.sh stop
	stack/redis/redis.sh stop

status:
	stack/kafka/kafka.sh status || true
	stack/redis/redis.sh status || true

deps:
	stack/system-deps.sh

storm: deps
	stack/storm/install.sh

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	$(PY) -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

proto: venv
	$(PY) tools/gen_proto.py

model: venv
	$(VENV)/bin/botscore train-baseline --out models/baseline

bench: venv
	$(PY) bench/scoring_throughput.py
