# One-command set-up: `make quickstart` and `make test` install on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export PYTHONPATH := $(CURDIR)$(if $(PYTHONPATH),:$(PYTHONPATH))

.PHONY: install test quickstart lint clean

install: $(STAMP)

# Re-run when the pins change; the compat step patches the installed
# mmaction2 and clip packages (idempotent) and then checks every fix.
$(STAMP): requirements/runtime.txt requirements/tests.txt models/compat.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q \
		-r requirements/runtime.txt -r requirements/tests.txt
	$(PY) models/compat.py --install
	$(PY) models/compat.py --check
	touch $(STAMP)

test: install
	$(PY) -m pytest -q tests

quickstart: install
	$(PY) tools/quickstart.py

lint: install
	$(PY) -m flake8 models tools tests configs

clean:
	rm -rf $(VENV) work_dirs
