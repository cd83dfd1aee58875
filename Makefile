# The two entry points a newcomer needs: `make demo` and `make test`. Each creates .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# No network beyond the package registries here: keep Ray and MLflow from phoning home.
export RAY_USAGE_STATS_ENABLED := 0
export MLFLOW_DISABLE_TELEMETRY := true
export DO_NOT_TRACK := 1

.PHONY: demo test bench install clean

# The installed packages are byte-compiled on every core, not by pip on one. Not left to the first import: with
# PYTHONDONTWRITEBYTECODE set, as on this machine, every process would compile torch again. Like pip,
# compileall leaves a file this Python cannot compile (torch ships a 3.12-only test helper) to fail if imported.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip >/dev/null
	$(BIN)/pip install --no-compile -e '.[test]'
	$(BIN)/python -m compileall -q -j 0 $(VENV)/lib >/dev/null || true
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/rollout demo

# Two runs (tests/conftest.py): the tests off Ray on two workers, then those on Ray alone, sharing the trained
# models. Both run whatever the first found; the target fails if either did.
test: $(STAMP)
	rm -rf .test-models
	status=0; \
	ROOMSIGHT_TEST_MODELS=$(CURDIR)/.test-models $(BIN)/python -m pytest -q -ra --durations=10 -n 2 -m "not ray" || status=$$?; \
	ROOMSIGHT_TEST_MODELS=$(CURDIR)/.test-models $(BIN)/python -m pytest -q -ra --durations=10 -m ray || status=$$?; \
	exit $$status

bench: $(STAMP)
	$(BIN)/python -m benchmarks.run $(BENCH_ARGS)

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .test-models
