# Two commands do all the set-up on a fresh machine:
#   make demo   label real NSMC reviews on a local Ray with a small model the project builds
#   make test   run the test suite
# Both create .venv/ (with the `kobert` command) on first use.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: setup demo test bench clean

setup: $(STAMP)

# pip's "Location ... is ignored" lines come from this machine's extra local indexes and are noise.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	set -o pipefail; $(BIN)/python -m pip install -q -e '.[dev]' 2>&1 | { grep -v 'is ignored: it is neither' || true; }
	touch $(STAMP)

demo: setup
	$(BIN)/kobert demo

# Tests without Ray run on two pytest workers (pytest-xdist), each on a core; the tests that start a real Ray
# use every core themselves and run one at a time after them. Both parts must pass.
test: setup
	status=0; \
	$(BIN)/python -m pytest -q -m "not ray" -n 2 --durations=10 || status=$$?; \
	$(BIN)/python -m pytest -q -m ray --durations=15 || status=$$?; \
	exit $$status

bench: setup
	$(BIN)/python bench/tokenizer_throughput.py
	$(BIN)/python bench/label_throughput.py
	$(BIN)/python bench/train_throughput.py

clean:
	rm -rf $(VENV) artifacts .pytest_cache
