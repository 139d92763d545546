# botscore: the two commands a new user needs are `make run` and `make test`.
# Everything else is a step they call; each installs only what is missing.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

VENV ?= .venv
PY := $(VENV)/bin/python
export BOTSCORE_CACHE ?= $(HOME)/.cache/botscore
export BOTSCORE_STATE ?= $(CURDIR)/.stack
# The stack scripts put Redis and Kafka on REDIS_PORT and KAFKA_PORT (their messages say to
# set them when a port is taken); botscore, bin/botscore and the tests read BOTSCORE_*: when
# the first are set, the second follow them, unless set too.
ifdef REDIS_PORT
export BOTSCORE_REDIS_PORT ?= $(REDIS_PORT)
endif
ifdef KAFKA_PORT
export BOTSCORE_KAFKA_BOOTSTRAP_SERVERS ?= 127.0.0.1:$(KAFKA_PORT)
endif
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

# The slowest tests are listed at the end: CI's budget is 45 minutes. Soaks run in make bench.
test: up lint
	$(PY) -m pytest --durations=25 -m "not soak"

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
	stack/contract.sh lint

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

# The Storm cluster and the three-broker Kafka of the replication test too (nothing to do
# when they are not running), the cluster first: its workers use Kafka and Redis. Each is
# stopped even when one before it fails to stop; the recipe fails then.
down:
	rc=0; \
	stack/storm/cluster.sh stop || rc=1; \
	stack/nginx/nginx.sh stop || rc=1; \
	stack/kafka/replicated.sh stop || rc=1; \
	stack/kafka/kafka.sh stop || rc=1; \
	stack/redis/redis.sh stop || rc=1; \
	exit $$rc

# Fails when a service is down, after showing both.
status:
	rc=0; \
	stack/kafka/kafka.sh status || rc=1; \
	stack/redis/redis.sh status || rc=1; \
	exit $$rc

deps:
	stack/system-deps.sh

storm: deps
	stack/storm/install.sh

venv: $(VENV)/.installed

# Made again when its python has no pip: `python3 -m venv` leaves bin/python behind when it
# fails (Debian without python3.X-venv), and that venv would fail every later run.
$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PY) -m pip --version >/dev/null 2>&1 || python3 -m venv --clear $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	touch $@

# Python into src/, Go into gen/go/, Java into gen/java/ (generators from stack/contract.sh).
proto: venv
	$(PY) tools/gen_proto.py --go-plugin "$$(stack/contract.sh go-plugin)" \
		--java-protoc "$$(stack/contract.sh java-protoc)"

model: venv
	bin/botscore train --out models/baseline

bench: up
	PYTHONPATH=src $(PY) bench/scoring_throughput.py
	PYTHONPATH=src $(PY) bench/feature_stage.py
	PYTHONPATH=src $(PY) bench/kafka_producer.py
	PYTHONPATH=src $(PY) bench/aggregation_topology.py
	PYTHONPATH=src $(PY) bench/publishing.py --publishers 2
	PYTHONPATH=src $(PY) bench/scoring_pipeline.py
	PYTHONPATH=src $(PY) bench/web_edge.py
	PYTHONPATH=src $(PY) bench/enforcer.py
	PYTHONPATH=src $(PY) bench/state_cluster.py
	PYTHONPATH=src $(PY) bench/sizing.py
	PYTHONPATH=src $(PY) bench/model_variants.py
	PYTHONPATH=src $(PY) bench/new_humans.py
	$(PY) -m pytest -m soak
