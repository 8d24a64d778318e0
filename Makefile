# The two commands of the README: `make reproduce` and `make test`. Both set up .venv first.
VENV ?= .venv
PYTHON ?= python3
# torch 2.13.0's CPU wheel is on the reference machine's disk; on a GPU machine set e.g. TORCH_SPEC=torch
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE ?= 1
export HF_DATASETS_OFFLINE ?= 1

.PHONY: reproduce test test-fast paper lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/python -m pip install --quiet -e ".[test,dev,tensorboard,wandb,mlflow]"
	touch $@

reproduce: $(STAMP)
	$(BIN)/reproduce

test: $(STAMP)  # two workers, one test file each, the longest first (tests/conftest.py)
	$(BIN)/python -m pytest -q -n 2 --dist loadfile --no-loadscope-reorder

test-fast: $(STAMP)  # the suite without the tests marked slow (whole runs, several processes, faults)
	$(BIN)/python -m pytest -q -n 2 --dist loadfile --no-loadscope-reorder -m "not slow"

paper: $(STAMP)
	$(BIN)/reproduce paper

lint: $(STAMP)
	$(BIN)/ruff check reproduce tests bench

clean:
	rm -rf runs outputs .pytest_cache
