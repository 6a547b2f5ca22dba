# cityscapes-bench: every target depends on the virtual environment, so the first command on a
# fresh machine installs the pinned dependencies (once; the stamp file records it).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP = $(VENV)/.installed-$(notdir $(REQUIREMENTS))
REQUIREMENTS ?= requirements.txt

# Run settings (see `make help`).
MODEL ?= pspnet
DATASET ?= $(CITYSCAPES_DATASET)
SPLIT ?= val
CHECKPOINT ?=
MODE ?= whole
SYNTHETIC ?= data/generated/synthetic

export TF_CPP_MIN_LOG_LEVEL ?= 2

.DEFAULT_GOAL := help
.PHONY: help venv test lint data bench clean

help: ## List targets and variables
	@echo "cityscapes-bench: Cityscapes segmentation benchmark harness"
	@echo
	@echo "Targets:"
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'
	@echo
	@echo "Variables:"
	@echo "  MODEL=$(MODEL)        registry name or package.module:function"
	@echo "  DATASET=...          Cityscapes root (default: \$$CITYSCAPES_DATASET, else the synthetic set)"
	@echo "  SPLIT=$(SPLIT)          split to evaluate"
	@echo "  CHECKPOINT=...       .keras checkpoint to evaluate (default: train the CPU preset once)"
	@echo "  MODE=$(MODE)         inference mode: whole | slide | multiscale"
	@echo "  SYNTHETIC=$(SYNTHETIC)  where 'make data' writes the synthetic dataset"
	@echo "  REQUIREMENTS=$(REQUIREMENTS)  pinned dependencies; for CUDA: VENV=.venv-gpu REQUIREMENTS=requirements-gpu.txt"

$(STAMP): $(REQUIREMENTS)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r $(REQUIREMENTS)
	@touch $@

venv: $(STAMP) ## Create .venv and install the pinned dependencies

test: $(STAMP) ## Run the test suite
	$(PY) -m pytest -q

lint: $(STAMP) ## Run ruff
	$(PY) -m ruff check bench models data tests

data: $(STAMP) ## Generate the embedded synthetic dataset
	$(PY) -m data.synthetic --out $(SYNTHETIC)

bench: $(STAMP) ## Benchmark MODEL end to end: data, checkpoint, predict, evaluate, results, README
	$(PY) -m bench run --model $(MODEL) --split $(SPLIT) --mode $(MODE) \
		$(if $(DATASET),--dataset $(DATASET)) $(if $(CHECKPOINT),--checkpoint $(CHECKPOINT))

clean: ## Remove caches and generated data (keeps .venv)
	rm -rf .pytest_cache .ruff_cache data/generated
	find . -name __pycache__ -prune -exec rm -rf {} +
