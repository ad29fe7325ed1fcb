# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""The names users import from `trl_icrm` keep importing, lazily (importing the package loads no torch)."""

import subprocess
import sys

import pytest

import trl_icrm


NAMES_OF_0_1 = [
    "DEFAULT_MODEL",
    "BestOfNOutput",
    "BestOfNSampler",
    "DemonstrationRenderer",
    "DemonstrationTemplate",
    "ICRMConfig",
    "ICRMReward",
    "ICRMRewardTrainer",
    "ICRMSettings",
    "MathVerifyReward",
    "SequenceClassifierReward",
    "SupportsUncertainty",
    "build_reward",
    "default_model_path",
    "expected_best_of_n",
    "icrm_loss",
    "kl_bon",
    "load_icrm_model",
    "resolve_model_name_or_path",
]


@pytest.mark.parametrize("name", sorted(set(NAMES_OF_0_1) | set(trl_icrm.__all__)))
def test_public_name_imports(name):
    assert getattr(trl_icrm, name) is not None
    assert name in trl_icrm.__all__ and name in dir(trl_icrm)


def test_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'icrm_reward'"):
        trl_icrm.icrm_reward  # noqa: B018


def test_importing_the_package_loads_no_torch():
    code = "import sys, trl_icrm; print('torch' in sys.modules, 'transformers' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
