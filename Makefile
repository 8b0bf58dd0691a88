# One-command set-up: `make quickstart` and `make test` install on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export PYTHONPATH := $(CURDIR)$(if $(PYTHONPATH),:$(PYTHONPATH))

.PHONY: install test quickstart lint clean

install: $(STAMP)

# Re-run when the pins change. decord 0.6 and decord2 own the same package,
# as opencv-contrib-python (older installs) and opencv-python own cv2: the
# old one is taken out. `models/compat --repair` then reinstalls every
# package whose files differ from its wheel's RECORD (e.g. patched in place
# by an older install); --startup-hook adds the DRN placeholder hook (a
# .pth file of ours) for processes that import mmaction.models before the
# plugin. It runs the folder models/compat, which imports
# only the standard library: `-m models.compat` would import models/ first.
$(STAMP): requirements/runtime.txt requirements/no-deps.txt \
		requirements/tests.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	if $(PY) -m pip show -q decord >/dev/null 2>&1; then \
		$(PY) -m pip uninstall -y -q decord decord2; fi
	$(PY) -m pip uninstall -y -q opencv-contrib-python 2>/dev/null
	$(PY) -m pip install --disable-pip-version-check -q \
		-r requirements/runtime.txt -r requirements/tests.txt
	$(PY) -m pip install --disable-pip-version-check -q --no-deps \
		-r requirements/no-deps.txt
	$(PY) models/compat --repair
	$(PY) models/compat --startup-hook
	touch $(STAMP)

test: install
	$(PY) -m pytest -q -n auto --dist loadfile tests

quickstart: install
	$(PY) tools/quickstart.py

lint: install
	$(PY) -m flake8 models tools tests configs

clean:
	rm -rf $(VENV) work_dirs
