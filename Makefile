# cityscapes-bench: every target depends on the virtual environment, so the first command on a
# fresh machine installs the pinned dependencies (once; the stamp file records it).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
REQUIREMENTS ?= requirements.txt
STAMP = $(VENV)/.installed-$(notdir $(REQUIREMENTS))
TEST_STAMP = $(VENV)/.installed-requirements-test.txt
# the parity oracle (mmsegmentation on torch CPU) lives in its own venv, never in .venv
PARITY_VENV ?= .venv-parity
PARITY_STAMP = $(PARITY_VENV)/.installed-requirements-parity.txt
CODE := bench models data tests

# Run settings (see `make help`).
MODEL ?= pspnet
DATASET ?= $(CITYSCAPES_DATASET)
SPLIT ?= val
CHECKPOINT ?=
MODE ?= whole
SEEDS ?=
SYNTHETIC ?= data/generated/synthetic
PARITY_ARGS ?=
PRESET ?= lite
GPU_VENV ?= .venv-gpu
GPU_CHECK_ARGS ?=

export TF_CPP_MIN_LOG_LEVEL ?= 2

.DEFAULT_GOAL := help
.PHONY: help venv venv-parity test test-fast lint format data bench robustness generalize parity parity-fixtures perf-peer gpu-check clean

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
	@echo "  CHECKPOINT=...       .keras checkpoint, or a PyTorch .pth converted on the fly (default: train the CPU preset once)"
	@echo "  MODE=$(MODE)         inference mode: whole | slide | multiscale"
	@echo "  SEEDS=...            comma-separated training seeds, e.g. 0,1,2: one row of their mean and std (default: seed 0, n=1)"
	@echo "  SYNTHETIC=$(SYNTHETIC)  where 'make data' writes the synthetic dataset"
	@echo "  PRESET=$(PRESET)         robustness sweep size: lite (minutes) | full (the published protocol)"
	@echo "  PARITY_ARGS=...      extra options of tests/parity/mmseg_parity.py, e.g. --depths 18 --size 512x1024"
	@echo "  GPU_CHECK_ARGS=...   extra options of bench/perf/gpu_check.py, e.g. --dry-run (CPU plumbing) or --iterations 200"
	@echo "  REQUIREMENTS=$(REQUIREMENTS)  pinned dependencies; for CUDA: VENV=.venv-gpu REQUIREMENTS=requirements-gpu.txt"

# --no-compile: byte-compiling every module of TensorFlow and its dependencies at install took 1.5 of the
# first `make bench`'s 6 minutes on 2 cores (install 155 s, 60 s without); Python compiles what it imports.
PIP_INSTALL = $(PY) -m pip install --quiet --disable-pip-version-check --no-compile

$(STAMP): $(REQUIREMENTS) requirements-common.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP_INSTALL) -r $(REQUIREMENTS)
	@touch $@

$(TEST_STAMP): requirements-test.txt | $(STAMP)
	$(PIP_INSTALL) -r requirements-test.txt
	@touch $@

venv: $(STAMP) ## Create .venv and install the pinned dependencies

$(PARITY_STAMP): requirements-parity.txt
	@test -x $(PARITY_VENV)/bin/python || $(PYTHON) -m venv $(PARITY_VENV)
	$(PARITY_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-parity.txt
	@touch $@

venv-parity: $(PARITY_STAMP) ## Create .venv-parity: mmsegmentation's own PSPNet on torch CPU (parity oracle)

# Test processes (pytest-xdist, whole files each): much of the suite is single-threaded (TensorFlow starting
# in the CLI subprocesses, PNG decoding), so two processes on two cores take 11 min where one takes 18.
TEST_WORKERS ?= 2
XDIST = $(if $(filter-out 0 1,$(TEST_WORKERS)),-n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder)

test: $(STAMP) $(TEST_STAMP) ## Run the whole test suite (what CI runs; TEST_WORKERS=1: in one process)
	$(PY) -m pytest -q $(XDIST)

test-fast: $(STAMP) $(TEST_STAMP) ## Run the tests not marked slow (training, end to end, ResNet-50)
	$(PY) -m pytest -q $(XDIST) -m "not slow and not peer"

lint: $(TEST_STAMP) ## ruff check and ruff format --check
	$(PY) -m ruff check $(CODE)
	$(PY) -m ruff format --check $(CODE)

format: $(TEST_STAMP) ## Format the code with ruff (what lint checks)
	$(PY) -m ruff format $(CODE)
	$(PY) -m ruff check --fix $(CODE)

data: $(STAMP) ## Generate the embedded synthetic dataset
	$(PY) -m data.synthetic --out $(SYNTHETIC)

bench: $(STAMP) ## Benchmark MODEL end to end: data, checkpoint, predict, evaluate, results, README
	$(PY) -m bench run --model $(MODEL) --split $(SPLIT) --mode $(MODE) \
		$(if $(DATASET),--dataset $(DATASET)) $(if $(CHECKPOINT),--checkpoint $(CHECKPOINT)) \
		$(if $(SEEDS),--seeds $(SEEDS))

robustness: $(STAMP) ## Cityscapes-C sweep of CHECKPOINT: mIoU per corruption x severity, mPC, rPC (PRESET=lite|full)
	@test -n "$(CHECKPOINT)" || { echo "make robustness needs CHECKPOINT=ckpt.keras or a training folder, e.g. the one make bench trains: CHECKPOINT=checkpoints/pspnet-cpu-synthetic-v1-256x512"; exit 2; }
	$(PY) -m bench robustness --checkpoint $(CHECKPOINT) --preset $(PRESET) $(if $(DATASET),--dataset $(DATASET))

generalize: $(STAMP) ## CHECKPOINT on DATASETS=cityscapes=ROOT,acdc=ROOT,darkzurich=ROOT,foggy=ROOT,bdd100k=ROOT (any subset)
	@test -n "$(CHECKPOINT)" || { echo "make generalize needs CHECKPOINT=ckpt.keras (or a training folder / .pth)"; exit 2; }
	@test -n "$(DATASETS)" || { echo "make generalize needs DATASETS=cityscapes=ROOT,acdc=ROOT,... (see README 'Generalization')"; exit 2; }
	$(PY) -m bench generalize $(CHECKPOINT) --datasets $(DATASETS) --readme $(or $(README_OUT),README.md)

parity: $(STAMP) $(PARITY_STAMP) ## Parity of `bench convert` with mmsegmentation's own PSPNet R-18/50/101-D8 (~10 min)
	$(PARITY_VENV)/bin/python tests/parity/mmseg_parity.py --python $(PY) $(PARITY_ARGS)

parity-fixtures: $(STAMP) $(PARITY_STAMP) ## Rewrite tests/fixtures/mmseg/ (what make test checks) with mmsegmentation
	$(PARITY_VENV)/bin/python tests/parity/mmseg_parity.py --python $(PY) --write-fixtures tests/fixtures/mmseg

perf-peer: $(STAMP) $(TEST_STAMP) $(PARITY_STAMP) ## Time PSPNet-R50-D8 fp32/bf16 against mmsegmentation's own on torch (same input, threads)
	$(PY) -m pytest -q -m peer
	$(PY) -m bench perf model pspnet@512x1024 --precision bf16 --fold-bn --peer mmseg --repeats 5

gpu-check: ## PSPNet-R50-D8 fps (fp32, bf16, bf16+XLA) and training images/s on a GPU -> results/gpu-check.{json,md}
	$(MAKE) --no-print-directory venv VENV=$(GPU_VENV) REQUIREMENTS=requirements-gpu.txt
	$(GPU_VENV)/bin/python -m bench.perf.gpu_check $(GPU_CHECK_ARGS)

clean: ## Remove caches and generated data (keeps .venv)
	rm -rf .pytest_cache .ruff_cache data/generated
	find . -name __pycache__ -prune -exec rm -rf {} +
