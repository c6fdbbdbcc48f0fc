# The two commands a fresh machine needs: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test check ui bench soak lint typecheck clean sandbox

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

# demo and ui use the state every command reads: $CONNECTOR_STATE_DIR, default .connector
# (docs/state.md); the demo prints the export line for another shell or folder
demo: $(STAMP)
	$(BIN)/python -m connector.demo

test: $(STAMP) check
	$(BIN)/python -m pytest -n 2 --dist loadgroup --durations=20

# the architecture's import contracts (pyproject.toml), lint and types: CI runs them via `make test`
check: $(STAMP)
	$(BIN)/lint-imports --no-cache
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy connector

ui: $(STAMP)
	$(BIN)/python -m connector.demo --ui

sandbox: $(STAMP)
	$(BIN)/connector sandbox serve

bench: $(STAMP)
	$(BIN)/python -m bench

soak: $(STAMP)
	$(BIN)/python -m pytest tests/reliability -m soak --run-soak --timeout 3600 -s -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy connector

clean:
	rm -rf .connector .dagster_home
