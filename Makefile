# The README's commands. `make dev` runs the whole gateway locally; `make test` runs every test.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STACK  ?= dev
PORT   ?= 8080
REQUIREMENTS := requirements.txt requirements-dev.txt functions/requirements.txt policy/requirements.txt

.PHONY: setup test dev policy preflight bench lint format clean

setup: $(VENV)/.installed

$(VENV)/.installed: $(REQUIREMENTS)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

test: setup
	$(BIN)/python -m pytest

dev: setup
	$(BIN)/python -m local --stack $(STACK) --port $(PORT)

policy: setup
	$(BIN)/python policy/report.py --stack $(STACK)

# Checks the operator's AWS account for STACK before `pulumi up` (uses your AWS credentials).
preflight: setup
	$(BIN)/python tools/preflight.py --stack $(STACK)

bench: setup
	$(BIN)/python -m bench

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) .local .pytest_cache .ruff_cache .hypothesis
