PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check

.PHONY: demo test lint bench clean
.DEFAULT_GOAL := demo
NEEDS  = autotrace needs Python 3.11 or later; name one with PYTHON=, e.g. make $(or $(MAKECMDGOALS),demo) PYTHON=python3.12

$(VENV)/.created:
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "$(PYTHON) not found: $(NEEDS)" >&2; exit 1; }
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "$(PYTHON) is $$($(PYTHON) -c 'import platform; print(platform.python_version())' 2>/dev/null || echo 'no usable Python'): $(NEEDS)" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	@touch $@

# `make demo` installs only what the demo needs; `make test` adds the test tools and chromadb.
$(VENV)/.demo: $(VENV)/.created pyproject.toml
	$(PIP) install --quiet -e ".[all]"
	@touch $@

$(VENV)/.dev: $(VENV)/.created pyproject.toml
	$(PIP) install --quiet -e ".[dev,chroma]"
	@touch $@ $(VENV)/.demo

demo: $(VENV)/.demo
	$(PY) -m autotrace demo

test: $(VENV)/.dev
	$(PY) -m ruff check src tests benchmarks examples
	$(PY) -m pytest -q

lint: $(VENV)/.dev
	$(PY) -m ruff check src tests benchmarks examples

bench: $(VENV)/.dev
	$(PIP) install --quiet -e ".[bench]"
	$(PY) benchmarks/run_all.py

clean:
	rm -rf $(VENV) .pytest_cache build src/*.egg-info
