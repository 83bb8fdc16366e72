# The two commands: `make run` starts everything, `make test` runs lint, the type check and the tests.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test lint typecheck bench soak chaos clean

install: $(STAMP)

$(STAMP): pyproject.toml scripts/install-postgres.sh scripts/install-chromium.sh
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	$(BIN)/python -m compileall -q actors http >/dev/null  # bytecode now: ~20 processes import it at each start
	bash scripts/install-postgres.sh
	bash scripts/install-chromium.sh
	touch $(STAMP)

run: install
	$(BIN)/honcho start

test: install lint typecheck
	$(BIN)/python -m pytest -q

# ruff: lint rules with import sorting, then the formatter as a check (`ruff format .` fixes).
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# mypy, strict, over actors/ and http/web (settings in pyproject.toml).
typecheck: install
	$(BIN)/mypy

bench: install
	$(BIN)/python -m bench.run

# Fault soak, not part of the tests: SOAK_MINUTES of kill -9 under writes, 0 writes lost.
SOAK_MINUTES ?= 10
soak: install
	$(BIN)/python -m bench.grades.soak --minutes $(SOAK_MINUTES)

# Everything `make run` starts, under load, kill -9 of a random process every few seconds;
# one report of what was lost, applied twice, and how long each service was out.
# CHAOS_SEED=N replays a run's kills; CHAOS_BUS=jetstream runs grades on NATS JetStream.
CHAOS_MINUTES ?= 5
CHAOS_SEED ?=
CHAOS_BUS ?= builtin
chaos: install
	$(BIN)/python -m bench.chaos.run --minutes $(CHAOS_MINUTES) --bus $(CHAOS_BUS) $(if $(CHAOS_SEED),--seed $(CHAOS_SEED))

clean:
	rm -rf $(VENV) data bench/results/*.json bench/results/*.png
