# Two entry points for a fresh machine (see README.md); each sets up .venv itself.
#   make leaderboard   evaluate the zoo (quick preset) and print + write the leaderboard
#   make test          lint and run the test suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.robustkit-installed

.PHONY: setup leaderboard test lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# the torch pair first: pinned so pip takes the wheels already on this machine's disk
	$(BIN)/python -m pip install -q "torch==2.14.1" "torchvision==0.29.1"
	$(BIN)/python -m pip install -q -e ".[test]"
	touch $(STAMP)

setup: $(STAMP)

leaderboard: $(STAMP)
	$(BIN)/robustkit leaderboard run --preset quick

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache
