# modelfn: `make demo` and `make test` are the two commands of the quick start.
# Every target creates .venv and installs the project from pyproject.toml when needed.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# aws-cdk-lib runs its jsii kernel on Node; Node 20 works but jsii warns about its age on every run.
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := 1
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20

.PHONY: demo test synth synth-all deploy lint typecheck serve clean bench bench-quick bench-int8 bench-capture lock audit soak test-random

# The deployment stage (cdk.json "modelfn:stages"): make synth STAGE=prod, make deploy STAGE=prod.
STAGE ?= dev
STAGES := dev staging prod

# Every third-party package comes from requirements.lock, pinned with its sha256 hashes (pip
# refuses any file whose hash differs); the project itself is then installed without resolving
# anything. torch is the CPU build (2.13.0+cpu) that pip finds on this machine's disk.
$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --require-hashes -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .
	touch $(STAMP)

# checkov (tests/infra/test_security_checks.py) runs from a venv of its own, installed by hash from
# requirements-checkov.lock: its ~95 pinned dependencies stay out of the project's lock.
CHECKOV_VENV := build/checkov-venv
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed-stamp
$(CHECKOV_STAMP): requirements-checkov.lock
	rm -rf $(CHECKOV_VENV)
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet --upgrade pip
	$(CHECKOV_VENV)/bin/pip install --quiet --require-hashes -r requirements-checkov.lock
	touch $@

# Re-resolve requirements.lock after editing pyproject.toml's dependencies (needs the package index),
# then rewrite the torch image's requirement files from it. The layer and the image install the
# lock's versions by hash: uv lists the hash of every file of each version, the Lambda's cp312
# wheels for x86_64 and aarch64 included.
lock:
	$(BIN)/uv pip compile pyproject.toml --extra all --generate-hashes --find-links /opt/wheels \
		--python-version 3.11 --python-platform x86_64-manylinux_2_28 --quiet -o requirements.lock
	$(BIN)/python -m infra.container_image
	$(BIN)/uv pip compile requirements-checkov.in --generate-hashes \
		--python-version 3.11 --python-platform x86_64-manylinux_2_28 --quiet -o requirements-checkov.lock

# Known vulnerabilities of every locked package, from the PyPI advisory database (needs pypi.org).
audit: $(STAMP)
	$(BIN)/pip-audit -r requirements.lock --require-hashes --disable-pip --vulnerability-service pypi

demo: $(STAMP)  ## train cifar10-cnn (smoke), publish, serve through the Lambda handler, query it
	$(BIN)/modelfn demo

test: $(STAMP) $(CHECKOV_STAMP) lint typecheck  ## lint, types, then the whole test suite, on the CPU
	$(BIN)/pytest

# The same suite in a shuffled order (seed printed at the top; rerun one with
# RANDOM_ORDER_SEED=N), so no test leans on another having run first.
RANDOM_ORDER_SEED ?= $(shell date +%s)
test-random: $(STAMP) $(CHECKOV_STAMP)  ## the whole suite in a random order (pytest-random-order)
	$(BIN)/pytest --random-order-seed=$(RANDOM_ORDER_SEED)

soak: $(STAMP)  ## the reliability tests at full length: more fuzz cases, faults and requests (docs/reliability.md)
	MODELFN_SOAK=1 $(BIN)/pytest tests/reliability -q

serve: $(STAMP)  ## serve whatever is published in model_artifacts/ on http://127.0.0.1:8080
	$(BIN)/modelfn serve

# The CDK CLI is pinned in package.json; the app it runs (cdk.json) is .venv's python -m infra.app.
node_modules/.bin/cdk: package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

# No AWS account, credentials or Docker: the layer is pip-installed here (from PyPI the first
# time, then from build/layers/), the torch image only staged as a build context.
synth: $(STAMP) node_modules/.bin/cdk  ## STAGE's template + assets into cdk.out/ (default dev)
	npx cdk synth --quiet -c stage=$(STAGE)

synth-all: $(STAMP) node_modules/.bin/cdk  ## every stage, each into cdk.out/<stage>/
	for stage in $(STAGES); do npx cdk synth --quiet -c stage=$$stage -o cdk.out/$$stage || exit 1; done

deploy: $(STAMP) node_modules/.bin/cdk  ## needs AWS credentials and a bootstrapped account (docs/deploy.md)
	npx cdk deploy -c stage=$(STAGE)

# Two benchmarks, one page: the servers on the published models (python -m bench), then the size
# sweep from 10 MB to 2 GB against the limit (python -m bench.sweep, minutes, several GB of memory
# and disk the first time it builds its models under build/sweep/).
bench: $(STAMP)  ## modelfn vs the torch handler, the size sweep, then what capture costs: bench/results/, docs/benchmarks.md
	$(BIN)/python -m bench
	$(BIN)/python -m bench.sweep
	$(BIN)/python -m bench.capture

bench-capture: $(STAMP)  ## capture off against every request captured, through the handler (build/bench-capture.json)
	$(BIN)/python -m bench.capture

bench-quick: $(STAMP)  ## the same for cifar10-cnn, and the sweep to 1 GB, fewer runs, a smoke check (figures to build/)
	$(BIN)/python -m bench --quick
	$(BIN)/python -m bench.sweep --quick

# The int8 versions first: `modelfn quantize MODEL --alias int8` for each model (docs/serving.md).
INT8_MODELS ?= imdb-sentiment,ptb-lstm
bench-int8: $(STAMP)  ## fp32 vs int8 of the same version through the handler, against issue 22's targets
	$(BIN)/python -m bench.int8 --alias int8 --models $(INT8_MODELS)

# The Python trees, bottom floor first (docs/architecture.md), and the tests.
CODE := modelfn architectures training importing functions infra edge tools bench tests examples

lint: $(STAMP)  ## ruff (rules and format), then the floors' import contracts (pyproject [tool.importlinter])
	$(BIN)/ruff check $(CODE)
	$(BIN)/ruff format --check $(CODE)
	$(BIN)/lint-imports

typecheck: $(STAMP)  ## mypy, strict, on every floor and the benchmarks
	$(BIN)/mypy modelfn architectures training importing functions infra edge tools bench

clean:
	rm -rf cdk.out build .pytest_cache .mypy_cache .ruff_cache .import_linter_cache
