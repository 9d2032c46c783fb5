# Two commands do all the set-up on a fresh machine (Python 3.11+ and make):
#   make demo   - create/refresh .venv, score the embedded data, run the uncertainty analysis and build every report
#   make test   - create/refresh .venv and run the whole test suite
# Both install the exact versions pinned in requirements/lock.txt (`make lock` updates it).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
LOCK   := requirements/lock.txt
ROUND  ?= latest

.PHONY: demo test scores compile bench lock clean help

help:
	@echo "make demo   score the embedded illustrative Mali survey, run the uncertainty analysis and build every report"
	@echo "make test   run the test suite"
	@echo "make bench  run the benchmarks (benchmarks/)"
	@echo "make lock   re-pin $(LOCK) after a change of pyproject.toml (LOCK_ARGS=--upgrade: newest releases)"

# (Re)install when the project's requirements or their pins change.  The lock file pins
# every package, so that a scheduled run installs what the tests passed with; uv is much
# faster than pip and compiles bytecode at install time; pip is the fallback.
$(STAMP): pyproject.toml $(LOCK)
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
	  { echo "Python 3.11 or newer is needed (PYTHON=$(PYTHON))"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv || true
	if [ -x $(BIN)/uv ]; then \
	  UV_COMPILE_BYTECODE=1 $(BIN)/uv pip install --quiet --python $(BIN)/python -c $(LOCK) -e '.[dev]'; \
	else \
	  $(BIN)/python -m pip install --quiet -c $(LOCK) -e '.[dev]' && $(BIN)/python -m compileall -q $(VENV) >/dev/null; \
	fi
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

# Compile the package's bytecode up front: report kernels import it many times, and
# PYTHONDONTWRITEBYTECODE would otherwise make every import compile it again.
compile: $(STAMP)
	@$(BIN)/python -m compileall -q stability

demo: compile
	$(BIN)/stability score
	$(BIN)/stability uncertainty
	$(BIN)/stability report --all --round $(ROUND)

scores: compile
	$(BIN)/stability score

test: compile
	$(BIN)/ruff check stability tests benchmarks
	$(BIN)/python -m pytest -n 2 -q

# Pin every dependency of pyproject.toml (with the dev extra) for every platform and
# Python >= 3.11.  Existing pins are kept where they still fit; to move everything to
# the newest releases: make lock LOCK_ARGS=--upgrade.  Commit the lock file with the change.
LOCK_ARGS ?=
lock:
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	test -x $(BIN)/uv || $(BIN)/python -m pip install --quiet --disable-pip-version-check uv
	mkdir -p $(dir $(LOCK)) && { cp $(LOCK) $(LOCK).new 2>/dev/null || : > $(LOCK).new; }
	$(BIN)/uv pip compile --quiet --universal --python-version 3.11 --extra dev \
	  --custom-compile-command 'make lock' $(LOCK_ARGS) pyproject.toml -o $(LOCK).new
	if cmp -s $(LOCK).new $(LOCK); then rm $(LOCK).new; else mv $(LOCK).new $(LOCK); echo "updated $(LOCK)"; fi

bench: compile
	$(BIN)/python benchmarks/bench_pipeline.py
	$(BIN)/python benchmarks/bench_pipeline.py --treat-all
	$(BIN)/python benchmarks/bench_compute.py
	$(BIN)/python benchmarks/bench_reports.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis test-artifacts build dist
	find reports -mindepth 1 ! -name README.md -exec rm -rf {} +
