# The README's commands. `make dev` runs the whole gateway locally; `make test` runs every test.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STACK  ?= dev
PORT   ?= 8080
REQUIREMENTS := requirements.txt requirements-dev.txt functions/requirements.txt policy/requirements.txt

.PHONY: setup test dev policy bench lint format clean

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

clean:
	rm -rf $(VENV) .local .pytest_cache .ruff_cache .hypothesis
