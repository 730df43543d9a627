PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check

.PHONY: demo test lint bench clean

$(VENV)/.created:
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "Python 3.11 ($(PYTHON)) not found" >&2; exit 1; }
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
