# modelfn: `make demo` and `make test` are the two commands of the quick start.
# Every target creates .venv and installs the project from pyproject.toml when needed.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# aws-cdk-lib runs its jsii kernel on Node; Node 20 works but jsii warns about its age on every run.
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION := 1
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20

.PHONY: demo test synth synth-all deploy lint typecheck serve clean bench bench-quick

# The deployment stage (cdk.json "modelfn:stages"): make synth STAGE=prod, make deploy STAGE=prod.
STAGE ?= dev
STAGES := dev staging prod

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch==2.13.0 is pinned in the torch extra (part of train): pip takes the CPU build from this machine's disk.
	$(BIN)/pip install --quiet -e '.[all]'
	touch $(STAMP)

demo: $(STAMP)  ## train cifar10-cnn (smoke), publish, serve through the Lambda handler, query it
	$(BIN)/modelfn demo

test: $(STAMP) lint typecheck  ## lint, types, then the whole test suite, on the CPU
	$(BIN)/pytest

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

bench: $(STAMP)  ## modelfn vs the torch handler on the published models: bench/results/, docs/benchmarks.md
	$(BIN)/python -m bench

bench-quick: $(STAMP)  ## the same for cifar10-cnn with fewer runs, a smoke check (figures to build/)
	$(BIN)/python -m bench --quick

lint: $(STAMP)
	$(BIN)/ruff check modelfn training functions infra bench tests

typecheck: $(STAMP)  ## mypy on the serving, infra and benchmark code
	$(BIN)/mypy modelfn functions infra bench

clean:
	rm -rf cdk.out build .pytest_cache .mypy_cache .ruff_cache
