# Two commands do all the set-up on a fresh machine (Python 3.11+ and make):
#   make demo   - create/refresh .venv, score the embedded data and build every report
#   make test   - create/refresh .venv and run the whole test suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
ROUND  ?= latest

.PHONY: demo test scores compile bench clean help

help:
	@echo "make demo   score the embedded illustrative Mali survey and build every regional report"
	@echo "make test   run the test suite"
	@echo "make bench  run the benchmarks (benchmarks/)"

# (Re)install when the project's requirements change.  uv is much faster than pip
# and compiles bytecode at install time; pip is the fallback.
$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
	  { echo "Python 3.11 or newer is needed (PYTHON=$(PYTHON))"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv || true
	if [ -x $(BIN)/uv ]; then \
	  UV_COMPILE_BYTECODE=1 $(BIN)/uv pip install --quiet --python $(BIN)/python -e '.[dev]'; \
	else \
	  $(BIN)/python -m pip install --quiet -e '.[dev]' && $(BIN)/python -m compileall -q $(VENV) >/dev/null; \
	fi
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

# Compile the package's bytecode up front: report kernels import it many times, and
# PYTHONDONTWRITEBYTECODE would otherwise make every import compile it again.
compile: $(STAMP)
	@$(BIN)/python -m compileall -q stability

demo: compile
	$(BIN)/stability score
	$(BIN)/stability report --all --round $(ROUND)

scores: compile
	$(BIN)/stability score

test: compile
	$(BIN)/ruff check stability tests benchmarks
	$(BIN)/python -m pytest -n 2 -q

bench: compile
	$(BIN)/python benchmarks/bench_pipeline.py
	$(BIN)/python benchmarks/bench_reports.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis test-artifacts
	find reports -mindepth 1 ! -name README.md -exec rm -rf {} +
