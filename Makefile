# Two commands on a fresh machine (Python 3.11, node, npm):
#   make lab    install everything, open JupyterLab on the quickstart notebook (offline model)
#   make test   install everything, run lint, types, JS tests and the whole test suite
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install lab test lint js-test notebooks clean

$(STAMP): pyproject.toml $(wildcard js/package-lock.json) $(wildcard js/src/*)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# root (containers, some hub images) needs Jupyter's explicit consent
ALLOW_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root)

lab: install
	$(BIN)/jupyter lab $(ALLOW_ROOT) notebooks/01_quickstart.ipynb

lint: install
	$(BIN)/ruff check threadwidget tests bench
	$(BIN)/ruff format --check threadwidget
	$(BIN)/mypy
	$(BIN)/lint-imports

# node_modules is refreshed when package-lock.json changed since it was installed (tests/test_wire.py
# runs js/'s schema generator, so pytest needs it too)
js-test: install
	cd js && (test node_modules/.package-lock.json -nt package-lock.json || npm ci --no-audit --no-fund) && npm test && npm run typecheck

# The tutorials run under nbval, their outputs compared with the ones stored in them (through the sanitize
# file: ids, times, durations, temporary folders), in a kernel of this environment that sees what a fresh
# machine has: no API key, no default store, random ids.
NB_ENV := env -u OPENAI_API_KEY -u OPENAI_BASE_URL -u OPENAI_MODEL -u THREADWIDGET_DB -u THREADWIDGET_DETERMINISTIC_IDS
NBVAL := --nbval --nbval-current-env --nbval-sanitize-with threadwidget/testing/nbval_sanitize.cfg

test: lint js-test
	$(NB_ENV) $(BIN)/pytest -q tests notebooks $(NBVAL) -p no:cacheprovider

# Run the tutorials and store their outputs (after changing one, or what threadwidget shows), without the
# widgets' state, so that a notebook read without a kernel shows each view's transcript.
notebooks: install
	$(NB_ENV) $(BIN)/jupyter nbconvert --to notebook --execute --inplace --ExecutePreprocessor.kernel_name=python3 \
		--ExecutePreprocessor.store_widget_state=False --ExecutePreprocessor.record_timing=False notebooks/*.ipynb

clean:
	rm -rf $(VENV) threadwidget/static js/node_modules
