# The README's commands. `make dev` runs the whole gateway locally; `make test` runs every test.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STACK  ?= dev
PORT   ?= 8080
REQUIREMENTS := requirements.txt requirements-dev.txt functions/requirements.txt policy/requirements.txt

.PHONY: typecheck setup test dev policy preflight admin bench lint format clean web web-deps amplify-deps openai-node-deps

AMPLIFY_EXAMPLE := examples/amplify-client
OPENAI_NODE_EXAMPLE := examples/openai-node

# `make dev` needs only Python; the npm packages are for the tests (and `make web`).
setup: $(VENV)/.installed

# First run: a couple of minutes; say what is happening rather than sit silent.
# requirements.txt installs the project itself (`pip install -e .`, see pyproject.toml), which makes
# `gateway`, `chat`, `settings`, `components`, `local`, `tools`, `bench`, ... importable.
$(VENV)/.installed: $(REQUIREMENTS) pyproject.toml
	@echo "==> Creating the Python virtual environment in $(VENV) (first run only)"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "==> Installing Python dependencies (requirements-dev.txt); this takes a minute or two"
	$(BIN)/python -m pip install --disable-pip-version-check \
		-r requirements-dev.txt | grep -E '^(Collecting|Successfully installed)' || true
	@$(BIN)/python -c "import moto, aiohttp, pulumi, gateway, settings" || \
		(echo "error: the Python dependencies did not install; see pip's messages above" >&2; exit 1)
	@touch $@
	@echo "==> Python dependencies ready"

# The Amplify JS example client, run by `make test` (pinned by its package-lock.json).
amplify-deps: $(AMPLIFY_EXAMPLE)/node_modules/.installed

$(AMPLIFY_EXAMPLE)/node_modules/.installed: $(AMPLIFY_EXAMPLE)/package.json $(AMPLIFY_EXAMPLE)/package-lock.json
	@command -v npm >/dev/null || (echo "error: Node.js >= 20 and npm are needed (see README)" >&2; exit 1)
	@echo "==> Installing the Amplify JS example's packages (npm ci in $(AMPLIFY_EXAMPLE))"
	cd $(AMPLIFY_EXAMPLE) && npm ci --no-audit --no-fund
	@touch $@

# The openai npm package example, run by `make test` against make dev's /v1 (pinned by its lock).
openai-node-deps: $(OPENAI_NODE_EXAMPLE)/node_modules/.installed

$(OPENAI_NODE_EXAMPLE)/node_modules/.installed: $(OPENAI_NODE_EXAMPLE)/package.json $(OPENAI_NODE_EXAMPLE)/package-lock.json
	@command -v npm >/dev/null || (echo "error: Node.js >= 20 and npm are needed (see README)" >&2; exit 1)
	@echo "==> Installing the openai npm example's packages (npm ci in $(OPENAI_NODE_EXAMPLE))"
	cd $(OPENAI_NODE_EXAMPLE) && npm ci --no-audit --no-fund
	@touch $@

# The type check first: a type error fails the run before the tests start.
test: setup web-deps amplify-deps openai-node-deps typecheck
	$(BIN)/python -m pytest

# mypy over the program, the local gateway and the tools (scope and strictness: pyproject.toml).
typecheck: setup
	$(BIN)/mypy

dev: setup
	$(BIN)/python -m local --stack $(STACK) --port $(PORT)

policy: setup
	$(BIN)/python policy/report.py --stack $(STACK)

# Checks the operator's AWS account for STACK before `pulumi up` (uses your AWS credentials).
preflight: setup
	$(BIN)/python tools/preflight.py --stack $(STACK)

# The operator CLI (docs/admin.md): make admin ARGS="users" (make dev), ARGS="--stack prod top".
admin: setup
	$(BIN)/python -m tools.admin $(ARGS)

# The reference design's pinned HTTP client goes beside the virtualenv, not into it.
REFERENCE_SITE := .local/bench/reference-site

bench: setup $(REFERENCE_SITE)/.installed
	$(BIN)/python -m bench

$(REFERENCE_SITE)/.installed: bench/requirements-reference.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --upgrade \
		--target $(REFERENCE_SITE) -r bench/requirements-reference.txt
	touch $@

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# The chat UI's npm toolchain (Node >= 20), pinned by web/package-lock.json. The built UI in
# web/dist is committed, so `make dev` and a deploy need no Node; the tests rebuild it to check.
web-deps: web/node_modules/.installed

web/node_modules/.installed: web/package.json web/package-lock.json
	@command -v npm >/dev/null || (echo "error: Node.js >= 20 and npm are needed (see README)" >&2; exit 1)
	@echo "==> Installing the web UI's npm packages (npm ci in web/)"
	cd web && npm ci --ignore-scripts --no-audit --no-fund
	@touch $@

web: web-deps
	cd web && node build.mjs

clean:
	rm -rf $(VENV) .local .pytest_cache .ruff_cache .mypy_cache .hypothesis
