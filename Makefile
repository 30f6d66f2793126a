# hdr-zoo. `make help` lists the targets. Every target creates .venv and installs what it needs first.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
export OPENCV_IO_ENABLE_OPENEXR := 1

.PHONY: help install browser test test-all sweep report results reference bench clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml constraints.txt
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[dev,perceptual]"
	$(BIN)/python -m pip install -q --no-deps cvvdp==0.5.7  # its torchvision requirement: see zoo/cvvdp.py
	touch $(STAMP)

install: $(STAMP)  ## create .venv and install the zoo with its test tools and ColorVideoVDP (CPU torch only)

# The results-page test drives a real headless Chromium: installed from Debian's packages where apt can (as on CI);
# elsewhere that one test skips, saying why.
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  { command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ] && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null 2>&1; } || \
	  echo "note: no chromium (apt unavailable or not root): the results-page browser test will skip"

test: $(STAMP) browser  ## run the test suite (slow tests excluded; about 13 min on 2 cores)
	$(BIN)/python -m pytest -q

test-all: $(STAMP) browser  ## run every test, slow ones included
	$(BIN)/python -m pytest -q -m "slow or not slow"

sweep: $(STAMP)  ## smoke sweep of every model (minutes; rows in outputs/smoke/), then its report (skips finished runs)
	$(BIN)/zoo run sweep=smoke results_dir=outputs/smoke/runs
	$(BIN)/zoo report --runs outputs/smoke/runs --out outputs/smoke

report: $(STAMP)  ## regenerate results/ tables and plots from results/runs/ (seconds)
	$(BIN)/zoo report

results: $(STAMP)  ## the committed results: zoo sweep + 3 ablations at train=budget, report, run log (~40 min)
	$(BIN)/python scripts/make_results.py

reference: $(STAMP)  ## the shipped weights: train the 3 models on data=mixed, zoo eval, model cards, README table (~3 h)
	$(BIN)/python scripts/reference.py all

bench: $(STAMP)  ## speed and precision benchmarks; tables printed, CSV written to results/bench/
	$(BIN)/python benchmarks/data_speed.py
	$(BIN)/python benchmarks/speed.py
	$(BIN)/python benchmarks/train_speed.py
	$(BIN)/python benchmarks/precision.py

clean:  ## remove outputs and caches (keeps .venv and results/)
	rm -rf outputs multirun .pytest_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
