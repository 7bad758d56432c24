# The two commands of the README: `make demo` and `make test`. Both set everything up first.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
TORCH  := torch==2.14.1 torchvision==0.29.1

.PHONY: setup setup-models demo test bench clean

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
	$(BIN)/pip install -q -e '.[models,dev,demo]' $(TORCH)
	touch $@

setup: $(VENV)/.core
setup-models: $(VENV)/.models

demo: $(VENV)/.core
	$(BIN)/python -m m3cvc.demo

test: $(VENV)/.models
	$(BIN)/python -m pytest -q

bench: $(VENV)/.models
	$(BIN)/python benchmarks/lite.py

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache
