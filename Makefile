# The two commands of the README: `make reproduce` and `make test`. Both set up .venv first.
VENV ?= .venv
PYTHON ?= python3
# the extras the set-up installs (the lock pins every extra): the tests, the linters, the trackers
EXTRAS ?= test,dev,tensorboard,wandb,mlflow
# torch 2.13.0's CPU wheel is on the reference machine's disk; on a GPU machine set e.g. TORCH_SPEC=torch
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Every other dependency, pinned (`make lock` regenerates it after pyproject.toml changes): a fresh clone installs
# exactly the versions the suite last passed with
LOCK := requirements/constraints.txt
LOCK_DATE ?= 2026-12-07T00:00:00Z
LOCK_PYTHONS ?= 3.11 3.12 3.13
PIP_SPEC ?= pip==26.3
export HF_HUB_OFFLINE ?= 1
export HF_DATASETS_OFFLINE ?= 1

.PHONY: reproduce test test-fast paper lint clean lock check-lock

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "$(PIP_SPEC)"

# pip's report of a failed install goes to $(VENV)/pip.log; the make target fails with one line naming what to run
$(STAMP): pyproject.toml $(LOCK) | $(BIN)/python
	@$(BIN)/python -m pip install --quiet "$(TORCH_SPEC)" -c $(LOCK) 2>$(VENV)/pip.log || { echo "error: \
	TORCH_SPEC=$(TORCH_SPEC) cannot be installed with $(LOCK)'s pins (pip's report: $(VENV)/pip.log); choose a \
	torch they allow, or run \`make lock TORCH_SPEC='$(TORCH_SPEC)'\`" >&2; exit 2; }
	@$(BIN)/python -m pip install --quiet -e ".[$(EXTRAS)]" -c $(LOCK) 2>$(VENV)/pip.log || { echo "error: \
	.[$(EXTRAS)] cannot be installed with $(LOCK)'s pins (pip's report: $(VENV)/pip.log); if pyproject.toml \
	changed, run \`make lock\`" >&2; exit 2; }
	@$(BIN)/python -m reproduce.core.environment
	touch $@

check-lock: $(STAMP)  # the installed versions are the lock's (one line naming what to run where they are not)
	@$(BIN)/python -m reproduce.core.environment

lock: | $(BIN)/python  # the lock again, from pyproject.toml's ranges (2.6 min with pip's cache warm, 21 cold)
	$(BIN)/python requirements/lock.py --date "$(LOCK_DATE)" --torch "$(TORCH_SPEC)" --pythons $(LOCK_PYTHONS)

reproduce: check-lock
	$(BIN)/reproduce

test: check-lock  # two workers, one test file each, the longest first (tests/conftest.py)
	$(BIN)/python -m pytest -q -n 2 --dist loadfile --no-loadscope-reorder

test-fast: check-lock  # the suite without the tests marked slow (whole runs, several processes, faults)
	$(BIN)/python -m pytest -q -n 2 --dist loadfile --no-loadscope-reorder -m "not slow"

paper: check-lock
	$(BIN)/reproduce paper

lint: $(STAMP)
	$(BIN)/ruff check reproduce tests bench

clean:
	rm -rf runs outputs .pytest_cache
