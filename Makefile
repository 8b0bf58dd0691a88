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
# decord 0.6 (an older install) and decord2 own the same package: the old
# one is taken out, with decord2, whose files it may have overwritten.
$(STAMP): requirements/runtime.txt requirements/no-deps.txt \
		requirements/tests.txt $(wildcard models/compat/*.py)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	if $(PY) -m pip show -q decord >/dev/null 2>&1; then \
		$(PY) -m pip uninstall -y -q decord decord2; fi
	$(PY) -m pip install --disable-pip-version-check -q \
		-r requirements/runtime.txt -r requirements/tests.txt
	$(PY) -m pip install --disable-pip-version-check -q --no-deps \
		-r requirements/no-deps.txt
	$(PY) models/compat --install
	$(PY) models/compat --check
	touch $(STAMP)

test: install
	$(PY) -m pytest -q -n auto --dist loadfile tests

quickstart: install
	$(PY) tools/quickstart.py

lint: install
	$(PY) -m flake8 models tools tests configs

clean:
	rm -rf $(VENV) work_dirs
