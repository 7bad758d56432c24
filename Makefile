# The two commands of the README: `make demo` and `make test`. Both set everything up first.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
TORCH  := torch==2.14.1 torchvision==0.29.1
# Real ImageNet backbones for LPIPS / DISTS where this checkout sits beside the project's shared weights
# (read in place, never copied). Elsewhere m3cvc looks in torchvision's cache; see `m3cvc metrics`.
export M3CVC_WEIGHTS ?= $(wildcard $(abspath ../shared/weights/lpips))

.PHONY: setup setup-models browser demo test bench bench-rd bench-scale clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# Core install: enough for the lite profile (no torch).
$(VENV)/.core: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[demo]'
	touch $@

# Model backends + test tools. torch is installed first, pinned, so nothing pulls another build.
$(VENV)/.models: pyproject.toml $(VENV)/.core
	$(BIN)/pip install -q $(TORCH)
	$(BIN)/pip install -q -e '.[models,dev,demo,scale]' $(TORCH)
	touch $@

# Test data: pyiqa's LPIPS / DISTS calibration image pairs, from its pinned wheel (not copied into the repo).
$(VENV)/calibration/ResultsCalibra/ref_dir/I19.bmp: tests/fetch_calibration.py | $(BIN)/python
	$(BIN)/python tests/fetch_calibration.py $(VENV)/calibration

setup: $(VENV)/.core
setup-models: $(VENV)/.models

demo: $(VENV)/.core
	$(BIN)/python -m m3cvc.demo

# Debian's chromium for the report's browser test (apt-get, as root); as root the test requires it.
browser:
	bash scripts/install-browser.sh

test: $(VENV)/.models $(VENV)/calibration/ResultsCalibra/ref_dir/I19.bmp browser
	M3CVC_REQUIRE_BROWSER=$$([ "$$(id -u)" = 0 ] && echo 1) $(BIN)/python -m pytest -q

bench: $(VENV)/.models
	$(BIN)/python benchmarks/lite.py

# lite vs VVC / x265 per real clip on every metric (about 40 minutes on 2 cores; DISTS dominates)
bench-rd: $(VENV)/.models
	$(BIN)/python benchmarks/lite_rd.py

# eval on 1 vs 2 workers: local, process pool, local Ray (a few minutes on 2 cores)
bench-scale: $(VENV)/.models
	$(BIN)/python benchmarks/scale.py

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache
