# gtmsync developer commands. `make help` lists them.
# Needs only Python 3.11+, pip and make: uv is bootstrapped into .tools/ and the
# locked dependencies (uv.lock) are installed into .venv/.
PYTHON ?= python3
TOOLS  := .tools
UV     := $(TOOLS)/bin/uv
VENV   := .venv
BIN    := $(VENV)/bin
export UV_PYTHON_DOWNLOADS := never
export UV_PYTHON := $(shell command -v $(PYTHON))

.DEFAULT_GOAL := help
.PHONY: help install demo serve test test-long lint format typecheck bench clean

help: ## list the commands
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet uv==0.13.8

$(VENV)/.synced: $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen --quiet
	@touch $@

install: $(VENV)/.synced ## install the locked dependencies into .venv

demo: install ## run the hub, worker and local Dataverse server with demo data
	$(BIN)/gtmsync demo

serve: install ## run the hub web process only (production-style)
	$(BIN)/gtmsync serve

test: install ## run the whole test suite (PostgreSQL too when GTMSYNC_TEST_DATABASE_URL is set)
	$(BIN)/python -m pytest -n 2 --dist loadgroup -m "not slow"

test-long: install ## run the long fault-injection and scale runs
	$(BIN)/python -m pytest -m slow

lint: install ## ruff, mypy strict, import contracts
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports

format: install ## apply ruff formatting and autofixes
	$(BIN)/ruff format src tests benchmarks
	$(BIN)/ruff check --fix src tests benchmarks

bench: install ## run every benchmark and print its table
	for f in benchmarks/*.py; do $(BIN)/python $$f || exit 1; done

clean: ## remove the virtualenvs and local data
	rm -rf $(TOOLS) $(VENV) gtmsync-data
