# One-command set-up: `make quickstart` and `make test` install on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export PYTHONPATH := $(CURDIR)$(if $(PYTHONPATH),:$(PYTHONPATH))

.PHONY: install test quickstart lint clean

install: $(STAMP)

# Re-run when the pins or the fixes change; the compat step patches the
# installed mmaction2, clip and openmim packages (idempotent) and then
# checks every fix. It runs the folder models/compat, which imports only
# the standard library: `-m models.compat` would import models/ first.
$(STAMP): requirements/runtime.txt requirements/tests.txt \
		$(wildcard models/compat/*.py)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q \
		-r requirements/runtime.txt -r requirements/tests.txt
	$(PY) models/compat --install
	$(PY) models/compat --check
	touch $(STAMP)

test: install
	$(PY) -m pytest -q tests

quickstart: install
	$(PY) tools/quickstart.py

lint: install
	$(PY) -m flake8 models tools tests configs

clean:
	rm -rf $(VENV) work_dirs
