# `make test` and `make demo` work on a fresh machine: each creates .venv if it
# is missing and installs what it needs into it.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python

.PHONY: test test-min demo bench learn docs clean

# setup.py builds the native kernels; any change to them reinstalls.
NATIVE := setup.py $(wildcard jaxrnn/_native/*.cc jaxrnn/_native/*.h)

$(VENV)/.base: pyproject.toml $(NATIVE)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e .
	touch $@

$(VENV)/.test: $(VENV)/.base
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

test: $(VENV)/.test
	$(PY) -m pytest -n 2 -q

# The lowest versions pyproject.toml admits (tests/minimum/constraints.txt),
# in a venv of their own, and a smoke test on them: every engine, the Flax
# modules, training with optax and orbax (about 3 minutes, mostly install).
MIN_VENV ?= .venv-min
test-min:
	test -x $(MIN_VENV)/bin/python || $(PYTHON) -m venv $(MIN_VENV)
	$(MIN_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(MIN_VENV)/bin/python -m pip install --quiet -c tests/minimum/constraints.txt .
	cd tests/minimum && $(CURDIR)/$(MIN_VENV)/bin/python smoke.py

# The documentation site: Sphinx (autodoc, napoleon, MyST), warnings as errors.
$(VENV)/.docs: $(VENV)/.base
	$(PY) -m pip install --quiet -e '.[docs]'
	touch $@

docs: $(VENV)/.docs
	$(PY) -m sphinx -W --keep-going -b html -q docs docs/_build/html
	@echo "docs: docs/_build/html/index.html"

$(VENV)/.bench: $(VENV)/.base
	$(PY) -m pip install --quiet -e '.[bench]'
	touch $@

bench: $(VENV)/.bench
	$(PY) benchmarks/bench.py

# The learning suite (benchmarks/learning.py): every cell on four tasks
# against the papers' anchors; writes benchmarks/results/learning.{md,json,png}.
$(VENV)/.learn: $(VENV)/.base
	$(PY) -m pip install --quiet -e '.[learn]'
	touch $@

learn: $(VENV)/.learn
	$(PY) benchmarks/learning.py

demo: $(VENV)/.base
	$(PY) examples/adding_problem.py

clean:
	rm -rf $(VENV) $(MIN_VENV) .pytest_cache build *.egg-info jaxrnn/_native/*.so docs/_build
