# Entry points: `make run` serves the embedded default; `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements/dev.txt pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: run test test-local lint format bench clean

$(STAMP): requirements/dev.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements/dev.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	@rm -f $(VENV)/.installed-*; touch $@

run: $(STAMP)
	$(BIN)/mediagate bootstrap
	$(BIN)/mediagate serve

# The suite runs in parallel processes (pytest-xdist): most tests wait on a server, a worker or
# a fake provider, so more processes than cores still shortens the run.
TEST_WORKERS ?= 4
test: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy src/mediagate
	$(BIN)/python -m pytest -q -p no:cacheprovider -n $(TEST_WORKERS) $(PYTEST_ARGS)

# The local diffusers engine's tests: installs torch (CPU build by default where the machine
# offers one; elsewhere pass TORCH_INDEX=https://download.pytorch.org/whl/cpu) and the extra.
TORCH_VERSION ?= 2.13.0
TORCH_INDEX ?=
test-local: $(STAMP)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check torch==$(TORCH_VERSION) $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements/local.txt
	MEDIAGATE_REQUIRE_LOCAL=1 $(BIN)/python -m pytest -q -p no:cacheprovider $(PYTEST_ARGS) tests/engines

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy src/mediagate

format: $(STAMP)
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

bench: $(STAMP)
	$(BIN)/python bench/submit.py

clean:
	rm -rf $(VENV) var
