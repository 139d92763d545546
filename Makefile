# botscore: the two commands a new user needs are `make run` and `make test`.
# Everything else is a step they call; each installs only what is missing.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

VENV ?= .venv
PY := $(VENV)/bin/python
export BOTSCORE_CACHE ?= $(HOME)/.cache/botscore
export BOTSCORE_STATE ?= $(CURDIR)/.stack
# bin/ holds our `storm` launcher and `botscore`; the venv holds sparse and streamparse_run.
export PATH := $(CURDIR)/bin:$(CURDIR)/$(VENV)/bin:$(PATH)
# streamparse runs Leiningen, which refuses to run as root unless told it is on purpose.
export LEIN_ROOT ?= 1
# The shell scripts that lint checks: stack/**/*.sh, and every file under bin/ and .ci/ that
# starts with a bash shebang, so that a new script is checked without being listed here.
SHELL_SCRIPTS = $(sort $(shell find stack -name '*.sh') \
	$(shell awk 'FNR == 1 && /^#!.*bash/ { print FILENAME }' bin/* .ci/*))

.PHONY: help run test up down status deps venv storm unit integration lint proto model bench mutation \
	cluster cluster-down cluster-status

help:
	@echo "make run    start the services, run the scoring topology locally, feed users, show scores"
	@echo "make test   run lint, unit and integration tests (starts the services)"
	@echo "make up | down | status    manage Kafka and Redis;  make proto | model | bench"
	@echo "make mutation   mutate the core modules, run the unit tests on each mutant, list survivors"
	@echo "make cluster | cluster-down | cluster-status    a Storm cluster here for 'sparse submit -e cluster'"

run: up
	stack/run-local.sh

# The slowest tests are listed at the end: CI's budget is 45 minutes.
test: up lint
	$(PY) -m pytest --durations=25

unit: venv
	$(PY) -m pytest -m "not integration"

integration: up
	$(PY) -m pytest -m integration

# Configured in pyproject.toml [tool.mutmut]; unit tests only, so it needs no services. Results
# are kept in mutants/: a second run retests only the functions that changed. mutmut forks a
# worker per mutant, and a child forked after OpenMP started its threads (scikit-learn) hangs.
mutation: venv
	OMP_NUM_THREADS=1 $(VENV)/bin/mutmut run
	$(VENV)/bin/mutmut results

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/shellcheck -x $(SHELL_SCRIPTS)

up: deps venv storm
	stack/kafka/kafka.sh start
	stack/redis/redis.sh start
	bin/botscore topics

# ZooKeeper, Nimbus and two supervisors (stack/storm/cluster.sh); then, from this folder:
# sparse submit -e cluster -n scoring (and -n aggregation), sparse list, sparse kill -e cluster -n NAME.
cluster: up
	stack/storm/cluster.sh start

cluster-down:
	stack/storm/cluster.sh stop

cluster-status:
	stack/storm/cluster.sh status

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

$(VENV)/.installed: requirements.txt requirements-dev.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	touch $@

proto: venv
	$(PY) tools/gen_proto.py

model: venv
	bin/botscore train --out models/baseline

bench: up
	PYTHONPATH=src $(PY) bench/scoring_throughput.py
	PYTHONPATH=src $(PY) bench/feature_stage.py
	PYTHONPATH=src $(PY) bench/kafka_producer.py
	PYTHONPATH=src $(PY) bench/aggregation_topology.py
	PYTHONPATH=src $(PY) bench/scoring_pipeline.py
	PYTHONPATH=src $(PY) bench/model_variants.py
