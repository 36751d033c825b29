# Two commands from a fresh clone: `make demo` and `make test`.
# Each creates .venv and installs what it needs on first use.

PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
STAMP   = $(VENV)/.installed
DEMO_DIR ?= demo
LABEXT      = workbench/labextension
LABEXT_SRC  = $(shell find extensions/jupyterlab/src extensions/jupyterlab/style extensions/jupyterlab/schema -type f) \
              extensions/jupyterlab/package.json extensions/jupyterlab/yarn.lock
LABEXT_LINK = $(VENV)/share/jupyter/labextensions/@mlworkbench/jupyterlab
export MLFLOW_DISABLE_TELEMETRY = true
export DVC_NO_ANALYTICS = 1

.PHONY: install demo test bench lint format clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
	$(PY) -m pip install -q -e ".[test]" 2>&1 | grep -v "^WARNING: Location" || true
	$(PY) -c "import workbench, mlflow, dvc, pytest" # fails here if the install failed
	# the editable install copied the built JupyterLab extension: link it to the build output instead
	rm -rf $(LABEXT_LINK) && ln -s $(CURDIR)/$(LABEXT) $(LABEXT_LINK)
	touch $(STAMP)

# rebuild the JupyterLab extension when its sources change (pip install built it once)
$(LABEXT)/package.json: $(LABEXT_SRC) | $(STAMP)
	cd extensions/jupyterlab && PATH=$(CURDIR)/$(VENV)/bin:$$PATH jlpm install && PATH=$(CURDIR)/$(VENV)/bin:$$PATH jlpm build
	touch $@

install: $(STAMP)

## Build the demo workspace (git + DVC + MLflow) and open it.
demo: install
	$(VENV)/bin/workbench demo --dir $(DEMO_DIR) --replace

## Lint, then the whole test suite (real MLflow server, real git + DVC repos).
test: install lint $(LABEXT)/package.json
	$(PY) -m pytest -q -p no:cacheprovider

## Every benchmark against its baseline (bench/README.md); about 20 minutes on 2 cores.
bench: install $(LABEXT)/package.json
	$(PY) bench/run.py

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean:
	rm -rf $(VENV) $(DEMO_DIR) .pytest_cache .ruff_cache tests/artifacts
	rm -rf $(LABEXT) extensions/jupyterlab/node_modules extensions/jupyterlab/lib extensions/jupyterlab/lib-test
