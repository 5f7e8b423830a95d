# Two commands from a fresh clone: `make demo` and `make test`. Both set everything up on first run.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PEER_VENV  ?= .venv-peer
PEER_STAMP := $(PEER_VENV)/.installed

.PHONY: setup demo test test-secure check test-unit faults bench lint format clean

## setup: virtualenv with ioc and its test tools, Kafka's jars from Maven Central, Redis, Mosquitto,
## PostgreSQL and Alertmanager if missing
setup: $(STAMP)
	@$(BIN)/ioc infra fetch

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

## demo: Kafka, Redis, Alertmanager, a worker, the API, the simulator, the notifier and a local mailbox; Ctrl-C
## stops them all
demo: setup
	$(BIN)/ioc demo

## test: the whole suite; it starts its own Kafka and Redis on free ports
test: setup
	$(BIN)/pytest $(PYTEST_ARGS)

## check: the fast tier, under 3 minutes, no servers: the pure code, the reading path and the commit
## sequence with fake events, and lint
check: $(STAMP)
	$(BIN)/pytest tests/unit -m "not slow" -q $(PYTEST_ARGS)
	$(BIN)/ruff check .

## test-secure: the integration tests against servers started as `ioc infra up --secure` does (Kafka SASL_SSL
## with SCRAM, Redis and Mosquitto over TLS with passwords); ~12 min, not in CI (make test runs
## tests/integration/test_secure_transport.py)
test-secure: setup
	IOC_TEST_SECURE=1 $(BIN)/pytest tests/integration $(PYTEST_ARGS)

## test-unit: the pure tests only (no servers)
test-unit: $(STAMP)
	$(BIN)/pytest tests/unit $(PYTEST_ARGS)

## faults: the fault suite alone (worker, broker, Redis and API killed mid-stream), with its figures; ~5 min
faults: setup
	$(BIN)/pytest tests/faults -s $(PYTEST_ARGS)

## bench: the limit, ioc, a Quix Streams peer and the Faust floor on one backlog, ioc's growth with state, alert
## latency and the alert target; at most 25 min (BENCH_ARGS="--max-minutes N"); JSON in benchmarks/results
bench: setup $(PEER_STAMP)
	$(BIN)/python benchmarks/bench.py $(BENCH_ARGS)

# The peer runs in a virtualenv of its own: quixstreams pins pydantic versions other than ioc's.
$(PEER_STAMP):
	$(PYTHON) -m venv $(PEER_VENV)
	$(PEER_VENV)/bin/pip install --quiet --upgrade pip
	$(PEER_VENV)/bin/pip install --quiet quixstreams==3.28.1
	@touch $@

## images: the container images, without a registry: a Debian bookworm base made by debootstrap
## (ioc-base:bookworm, once), then ioc:<version> from the Dockerfile (cached); see docker-compose.yml
.PHONY: images
images:
	deploy/docker/build-images.sh

## lock: deploy/docker/requirements.lock, the exact versions the image installs, from pyproject.toml's
## dependencies as PyPI resolves them now; run after changing them
.PHONY: lock
lock:
	deploy/docker/lock-requirements.sh

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) $(PEER_VENV) .pytest_cache .ruff_cache *.egg-info
