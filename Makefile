# The README's commands. `make dev` runs the whole gateway locally; `make test` runs every test.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STACK  ?= dev
PORT   ?= 8080
REQUIREMENTS := requirements.txt requirements-dev.txt functions/requirements.txt policy/requirements.txt

.PHONY: setup test dev policy bench lint format clean web web-deps

setup: $(VENV)/.installed

$(VENV)/.installed: $(REQUIREMENTS)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

test: setup web-deps
	$(BIN)/python -m pytest

dev: setup
	$(BIN)/python -m local --stack $(STACK) --port $(PORT)

policy: setup
	$(BIN)/python policy/report.py --stack $(STACK)

bench: setup
	$(BIN)/python -m bench

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
	@echo "Installing the web UI's npm packages (npm ci)..."
	cd web && npm ci --ignore-scripts --no-audit --no-fund
	touch $@

web: web-deps
	cd web && node build.mjs

clean:
	rm -rf $(VENV) .local .pytest_cache .ruff_cache .hypothesis
