# `make suite` runs the comparison suite, `make test` the tests; both create .venv first when it is missing.
# `make test-lower` runs the tests in .venv-lower, against the oldest supported versions (not run in CI).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
VENV_LOWER := .venv-lower

.PHONY: venv suite test test-lower bench example clean

venv: $(STAMP)

# Re-installs only when the project's metadata or the pinned versions change.
$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[test,flax,fast]'
	touch $(STAMP)

# The same install with the lower bounds of pyproject.toml pinned (constraints-lower.txt).
$(VENV_LOWER)/.installed: pyproject.toml constraints-lower.txt
	test -x $(VENV_LOWER)/bin/python || $(PYTHON) -m venv $(VENV_LOWER)
	$(VENV_LOWER)/bin/python -m pip install --quiet --disable-pip-version-check -c constraints-lower.txt -e '.[test,fast]'
	touch $@

test-lower: $(VENV_LOWER)/.installed
	$(VENV_LOWER)/bin/python -m pytest -q

suite: venv
	$(PY) -m lstm_compare run

# mypy first (over lstm_compare/: [tool.mypy] in pyproject.toml), then the tests.
test: venv
	$(PY) -m mypy
	$(PY) -m pytest -q

# Whole processes, alternated, medians (bench/bench_report.py); `make bench PAIRS=2` for a quicker look.
PAIRS ?= 5
bench: venv
	$(PY) bench/bench_report.py --pairs $(PAIRS)

example: venv
	$(PY) -m examples.seed_question

clean:
	rm -rf $(VENV) $(VENV_LOWER) reports/*.csv reports/*.png reports/suite
