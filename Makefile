# Two commands on a fresh machine: `make run` and `make test`. Everything else is optional.
SHELL := /bin/bash
UV_VERSION := 0.13.9
export UV_PROJECT_ENVIRONMENT := $(CURDIR)/.venv
export DAGSTER_HOME ?= $(CURDIR)/data/dagster_home
UV := $(shell command -v uv 2>/dev/null || echo $(CURDIR)/.tools/bin/uv)

.PHONY: env run test ui web mlflow-ui config lint bench clean browser-deps

$(CURDIR)/.tools/bin/uv:
	python3 -m venv $(CURDIR)/.tools
	$(CURDIR)/.tools/bin/pip install --quiet "uv==$(UV_VERSION)"

# Compiled at install: with PYTHONDONTWRITEBYTECODE set (as on CI machines) every import
# would otherwise recompile the libraries from source (the code location took 19 s, not 5 s).
env: $(UV)
	$(UV) sync --frozen --quiet --compile-bytecode
	@# The project's own modules too (an editable install is not compiled by uv): about 0.3 s of
	@# every code-location load where PYTHONDONTWRITEBYTECODE keeps Python from caching them.
	$(UV) run --frozen python -m compileall -q trading_assets resources io_managers sql bench
	mkdir -p $(DAGSTER_HOME)
	cp dagster.yaml $(DAGSTER_HOME)/dagster.yaml

run: env ## run the whole graph for the latest closed trading day on the embedded defaults
	$(UV) run --frozen trading-signals db upgrade
	$(UV) run --frozen trading-signals run $(ARGS)

# Three workers on two cores: the suite waits on servers and subprocesses (PostgreSQL, S3, MLflow,
# Dagster, `trading-signals run`) as much as on the CPU. Measured in one fresh clone: 2 workers
# 8 min 47 s, 3 workers 7 min 28 s.
PYTEST_WORKERS ?= 3

# The native-backfill tests (marker `serial`) start `dagster dev` with its daemon and run workers:
# run beside the rest they starved the suite's timed tests on two cores, so they run after it.
test: env browser-deps ## the test suite
	$(UV) run --frozen pytest -q -n $(PYTEST_WORKERS) --dist loadfile -m "not serial" $(PYTEST_ARGS)
	$(UV) run --frozen pytest -q -m serial $(PYTEST_ARGS)

# The browser tests (tests/web) drive Debian's Chromium through its own chromedriver, so Selenium
# Manager never downloads a browser. Installed once, as on a fresh machine (root, or sudo).
CHROMIUM := /usr/bin/chromium
CHROMEDRIVER := /usr/bin/chromedriver

browser-deps:
	@if [ ! -x $(CHROMIUM) ] || [ ! -x $(CHROMEDRIVER) ]; then \
		echo "installing chromium and chromium-driver for the browser tests (apt-get)"; \
		sudo=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		$$sudo apt-get update && \
		DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y chromium chromium-driver; \
	fi

# Started from DAGSTER_HOME: `dagster dev` warns of a dagster.yaml in its working directory unless
# that is DAGSTER_HOME (the repository's is the template `env` copies there), so the data folder,
# which defaults to ./data, is passed as an absolute path. Dagster's "use dg dev" notice is off:
# dg is not part of this project.
ui: env ## the Dagster UI on http://127.0.0.1:3000 (lineage, materialize, backfill)
	@echo "Dagster UI: http://127.0.0.1:$(or $(UI_PORT),3000)   artifact browser: http://127.0.0.1:8000 (make web)"
	@cd $(abspath $(DAGSTER_HOME)) && DAGSTER_HOME=$$(pwd -P) \
		TRADING_DATA_DIR=$(abspath $(or $(TRADING_DATA_DIR),data)) \
		PYTHONWARNINGS="$${PYTHONWARNINGS:+$$PYTHONWARNINGS,}ignore:Function \`dev_command\` is superseded" \
		$(UV) run --frozen --project $(CURDIR) dagster dev -w $(CURDIR)/workspace.yaml \
		-h 127.0.0.1 -p $(or $(UI_PORT),3000)

web: env ## the artifact browser and REST API on http://127.0.0.1:8000 (docs at /docs)
	$(UV) run --frozen trading-signals serve $(ARGS)

mlflow-ui: env ## the MLflow UI on http://127.0.0.1:5000 over the local store (data/mlflow.db)
	MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false $(UV) run --frozen mlflow ui \
		--backend-store-uri sqlite:///$(CURDIR)/data/mlflow.db -h 127.0.0.1 -p 5000 --workers 1

config: env
	$(UV) run --frozen trading-signals config

bench: env ## speed and memory figures beside their baselines (bench/results.json)
	$(UV) run --frozen python -m bench.run $(ARGS)

lint: env ## ruff, and the import contracts between the layers (pyproject.toml)
	$(UV) run --frozen ruff check .
	$(UV) run --frozen lint-imports

clean:
	rm -rf data .venv .tools
