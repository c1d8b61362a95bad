# BillByte — the two commands: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test setup lint typecheck unit audit bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	@touch $(STAMP)

setup: $(STAMP)

## Set up, migrate, seed the demo MSP, start the vendor sandboxes and serve the API on :8000
run: setup
	$(BIN)/billbyte migrate
	$(BIN)/billbyte demo
	$(BIN)/billbyte serve --sandbox

# Route, command and validator functions are used by their frameworks (see the whitelist).
VULTURE_DECORATORS := @*.get,@*.post,@*.put,@*.patch,@*.delete,@*.command,@*.exception_handler,@*.middleware,@field_validator,@model_validator,@field_serializer,@handler,@*.setter

lint: setup
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/lint-imports
	$(BIN)/vulture src/billbyte .ci/vulture_whitelist.py --min-confidence 60 \
		--exclude src/billbyte/migrations --ignore-decorators "$(VULTURE_DECORATORS)"

typecheck: setup
	$(BIN)/mypy

unit: setup
	$(BIN)/pytest -n 2 --dist loadgroup tests

## Lint, type-check and run the whole suite on SQLite and PostgreSQL
test: lint typecheck unit

## Known vulnerabilities in the installed dependencies (pip-audit; see .ci/pip_audit_gate.py)
audit: setup
	$(BIN)/python .ci/pip_audit_gate.py $(BIN)/pip-audit

bench: setup
	$(BIN)/python bench/run_all.py --size $(or $(BENCH_SIZE),full)

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache
