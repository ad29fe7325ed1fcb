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


def test_type_checking_imports_match_the_lazy_exports():
    """`trl_icrm/__init__.py` lists its exports once for the lazy import (`__all__` derived from them) and once for
    type checkers; the two lists name the same names from the same modules."""
    import ast
    from pathlib import Path

    tree = ast.parse(Path(trl_icrm.__file__).read_text(encoding="utf-8"))
    block = next(node for node in tree.body if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING")
    typed = {
        (f"trl_icrm.{node.module}", alias.name)
        for node in block.body
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }
    lazy = {(module, name) for module, names in trl_icrm._EXPORTS.items() for name in names}
    assert typed == lazy
    assert trl_icrm.__all__ == sorted(name for _, name in lazy)
