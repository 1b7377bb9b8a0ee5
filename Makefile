# The project's commands. Each target installs what it needs into .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
# Packages are installed by uv (pip installs only uv itself): a fresh clone's venvs in seconds
# instead of minutes (measured with empty caches: .venv 15 s vs 72 s with pip; checkov's 3 s vs
# 46 s). uv resolves as pip does but ignores pip.conf; it never downloads a Python here. .venv's
# bytecode is compiled at install, as pip does: otherwise each of make test's workers compiles the
# same modules on first import (pytest on a fresh clone: 173 s without, 139 s with). Not
# checkov's or the SAM CLI's, each run a few times: compiling checkov's took 10 s before the lint
# steps could start, and cost each of its two runs in make test 4 s less than that (its first run
# now leaves it for the second: CHECKOV_ENV).
UV_VERSION ?= 0.13.8
UV_PIP := UV_PYTHON_DOWNLOADS=never UV_NO_PROGRESS=1 $(BIN)/uv pip install --quiet

.PHONY: install bytecode demo test lint lint-ruff lint-mypy lint-cfn lint-checkov pytest browser-deps bench \
	diagram deploy-check clean

# checkov in its own venv: heavy, and its pins would fight cfn-lint's in .venv.
CHECKOV_VERSION ?= 3.3.30
CHECKOV_VENV := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed-$(CHECKOV_VERSION)
# Offline: no Prisma Cloud API key, no policy or mapping downloads, no package scan, no PyPI
# update check. Each run leaves the bytecode of the modules it compiled (PYTHONDONTWRITEBYTECODE
# set empty, where this machine sets it): the venv is installed without it, so make test's
# second run (tests/contract, on member.yaml) read the first's instead of compiling them again
# (that run: 8 s of CPU on a fresh clone, 4 s after).
CHECKOV_ENV := BC_SKIP_MAPPING=TRUE CHECKOV_RUN_SCA_PACKAGE_SCAN_V2=false CKV_SKIP_PACKAGE_UPDATE_CHECK=TRUE PYTHONDONTWRITEBYTECODE=
# The stack: template.yaml and the nested templates it includes (operations, install document);
# and member.yaml, the StackSet template for organisation mode (docs/organisation.md).
TEMPLATES := template.yaml $(sort $(wildcard templates/*.yaml)) member.yaml

# deploy-check: the AWS SAM CLI in its own venv (heavy, ~330 MB; not needed by `make test` or CI).
SAM_CLI_VERSION ?= 1.170.0
SAM_VENV := .venv-sam
SAM_STAMP := $(SAM_VENV)/.installed-$(SAM_CLI_VERSION)
# `sam build` runs pip with the functions' runtime Python (template.yaml Globals: Runtime).
LAMBDA_RUNTIME = $(shell sed -n 's/^ *Runtime: *\(python3\.[0-9]*\).*/\1/p' template.yaml | head -n 1)
# The first one that runs: on PATH (a pyenv shim may not), else any pyenv-installed version.
LAMBDA_PYTHON = $(shell for p in "$$(command -v $(LAMBDA_RUNTIME))" \
	$${PYENV_ROOT:-$$HOME/.pyenv}/versions/$(LAMBDA_RUNTIME:python%=%).*/bin/$(LAMBDA_RUNTIME); do \
	"$$p" -c '' >/dev/null 2>&1 && { echo "$$p"; break; }; done)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"
	$(UV_PIP) --compile-bytecode --python $(BIN)/python -e ".[dev]"
	rm -f $(VENV)/.installed-* && touch $(STAMP)

install: $(STAMP)

# The project's own bytecode, as the Lambda layer ships it (src/Makefile: layer-bytecode) and as a
# plain Python run would leave it. The editable install compiles none of it, and where
# PYTHONDONTWRITEBYTECODE is set (this machine) no run writes it either: every process then
# compiled the ~100 modules it imports again (figure 1's demo 0.3 s; each handler 25-40 ms).
# compileall writes it whatever that variable says, and skips files already compiled (0.1 s).
bytecode: $(STAMP)
	$(BIN)/python -m compileall -q -j 0 src tests

demo: bytecode
	$(BIN)/certrelay demo

lint: lint-ruff lint-mypy lint-cfn lint-checkov

lint-ruff: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

lint-mypy: $(STAMP)
	$(BIN)/mypy

lint-cfn: $(STAMP)
	$(BIN)/cfn-lint $(TEMPLATES) -a cfn_lint_serverless.rules

lint-checkov: $(CHECKOV_STAMP)
	$(CHECKOV_ENV) $(CHECKOV_VENV)/bin/checkov $(addprefix -f ,$(TEMPLATES)) \
		--config-file .checkov.yaml --quiet --compact --skip-download

$(CHECKOV_STAMP): $(STAMP)
	$(PYTHON) -m venv --without-pip $(CHECKOV_VENV)
	$(UV_PIP) --python $(CHECKOV_VENV)/bin/python "checkov==$(CHECKOV_VERSION)"
	rm -f $(CHECKOV_VENV)/.installed-* && touch $(CHECKOV_STAMP)

# The browser test drives Debian's chromium through its chromedriver (no browser download).
browser-deps:
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; \
	else \
		sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; \
	fi

# pytest on one worker more than there are cores (pytest-xdist; each test file runs whole on one
# worker, so a module's shared fixture is built once): about a quarter of a worker's time is spent
# waiting on install scripts, Chromium and handler threads, which the extra worker fills (2 cores:
# 162 s with 2 workers, 134 s with 3, 137 s with 4; session 7: 114 s with 3, 120 s with 4).
# The lint steps run first, side by side (checkov's venv is installed before them, in about 3 s:
# tests/contract runs checkov too), then pytest, which runs even when a lint step failed; any
# failure fails `make test`. Run next to pytest, a fresh clone's cold mypy and checkov slowed its
# workers far beyond their own CPU (make test 140-192 s; lint first: 142 s). Each step's output
# is printed whole when it ends. cfn-lint is not run twice: tests/contract runs it on each of
# $(TEMPLATES) (test_template.py, test_member_template.py), with the serverless rules.
PYTEST_WORKERS ?= $(shell echo $$(( $$(nproc 2>/dev/null || echo 1) + 1 )))

test: $(STAMP) $(CHECKOV_STAMP) browser-deps
	@$(MAKE) --no-print-directory -j 3 --output-sync=target lint-ruff lint-mypy lint-checkov; \
	lint=$$?; $(MAKE) --no-print-directory pytest && exit $$lint

pytest: bytecode
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadfile

bench: $(STAMP)  # bench/run.py compiles src/'s bytecode itself, before it times anything
	$(BIN)/python bench/run.py

diagram: $(STAMP)
	$(BIN)/python -m certrelay.console.diagram --write-docs

$(SAM_STAMP): $(STAMP)
	$(PYTHON) -m venv --without-pip $(SAM_VENV)
	$(UV_PIP) --python $(SAM_VENV)/bin/python "aws-sam-cli==$(SAM_CLI_VERSION)"
	rm -f $(SAM_VENV)/.installed-* && touch $(SAM_STAMP)

# What `sam deploy` would build, without an AWS account: samconfig.toml's validate and build
# settings (lint on; cached, parallel). Only a region is needed, not credentials. ProfilesLayer
# ships config/: profiles.json is compiled first from profiles.yaml as it is now.
deploy-check: $(SAM_STAMP) $(STAMP)
	@test -n "$(LAMBDA_PYTHON)" || { echo "deploy-check: $(LAMBDA_RUNTIME) is not on PATH (nor under pyenv); sam build needs the functions' runtime" >&2; exit 1; }
	$(BIN)/python -m certrelay.profiles_compile --write-json config/profiles.yaml
	SAM_CLI_TELEMETRY=0 AWS_DEFAULT_REGION=$${AWS_DEFAULT_REGION:-$${AWS_REGION:-eu-west-1}} \
		$(SAM_VENV)/bin/sam validate --lint
	SAM_CLI_TELEMETRY=0 AWS_DEFAULT_REGION=$${AWS_DEFAULT_REGION:-$${AWS_REGION:-eu-west-1}} \
		PATH="$(dir $(LAMBDA_PYTHON)):$$PATH" $(SAM_VENV)/bin/sam build

clean:
	rm -rf $(VENV) $(SAM_VENV) $(CHECKOV_VENV) .aws-sam .pytest_cache .mypy_cache .ruff_cache
