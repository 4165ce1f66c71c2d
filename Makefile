# `make suite` runs the comparison suite, `make test` the tests; both create .venv first when it is missing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: venv suite test bench example clean

venv: $(STAMP)

# Re-installs only when the project's metadata or the pinned versions change.
$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[test]'
	touch $(STAMP)

suite: venv
	$(PY) -m compare run

test: venv
	$(PY) -m pytest -q

bench: venv
	$(PY) bench/bench_report.py

example: venv
	$(PY) -m examples.seed_question

clean:
	rm -rf $(VENV) reports/*.csv reports/*.png reports/suite
