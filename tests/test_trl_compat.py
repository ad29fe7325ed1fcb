# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""Every private TRL / transformers name trl-icrm relies on still exists in the installed releases; when one moves,
these tests fail naming it."""

import ast
from pathlib import Path

import pytest
from trl import RewardTrainer

from trl_icrm import _trl_compat
from trl_icrm._trl_compat import (
    PRIVATE_SYMBOLS,
    REWARD_TRAINER_HOOKS,
    REWARD_TRAINER_STATE,
    TRLCompatibilityError,
    check_reward_trainer,
    private_symbol,
)


PACKAGE = Path(__file__).resolve().parent.parent / "trl_icrm"


@pytest.mark.parametrize("name", sorted(PRIVATE_SYMBOLS))
def test_private_symbol_exists(name):
    value = private_symbol(name)  # raises TRLCompatibilityError naming the module and symbol when it is gone
    if name != "_hf_deepspeed_config_weak_ref":  # a module-level reference, None while no DeepSpeed config is set
        assert callable(value), f"{PRIVATE_SYMBOLS[name]}.{name} is no longer callable"


@pytest.mark.parametrize("name", REWARD_TRAINER_HOOKS)
def test_reward_trainer_hook_exists(name):
    assert callable(getattr(RewardTrainer, name, None)), f"RewardTrainer.{name} is gone"


def test_reward_trainer_state_exists(icrm_trained):
    check_reward_trainer(icrm_trained)  # raises naming the missing attribute
    for name in REWARD_TRAINER_STATE:
        assert hasattr(icrm_trained, name), f"RewardTrainer().{name} is gone"


def test_a_moved_symbol_fails_loudly_by_name(monkeypatch):
    monkeypatch.setitem(PRIVATE_SYMBOLS, "pad", "trl.trainer.no_such_module")
    with pytest.raises(TRLCompatibilityError, match=r"trl\.trainer\.no_such_module\.pad"):
        _trl_compat.pad([])

    class Incomplete:
        pass

    with pytest.raises(TRLCompatibilityError, match="_metrics"):
        check_reward_trainer(Incomplete())


def test_private_names_are_imported_only_in_the_compat_module():
    """No module but `_trl_compat` imports from `trl.trainer.*`, `trl.models.utils` or private transformers modules."""
    private_modules = set(PRIVATE_SYMBOLS.values())
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if path.name == "_trl_compat.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module in private_modules:
                offenders.append(f"{path.relative_to(PACKAGE.parent)}: from {node.module} import ...")
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("trl.trainer"):
                offenders.append(f"{path.relative_to(PACKAGE.parent)}: from {node.module} import ...")
    assert not offenders, offenders


def test_the_cache_argument_is_the_current_name_and_scoring_warns_no_deprecation(random_icrm_dir):
    """The key-value cache is passed under the name the installed transformers' models take (`cache` where it
    exists), so scoring and shared-prefix training raise no deprecation warning about `past_key_values`."""
    import warnings

    import torch

    from trl_icrm._trl_compat import CACHE_ARGUMENTS, cache_argument
    from trl_icrm.icrm.modeling import load_icrm_model
    from trl_icrm.rewards import ICRMReward

    model, tokenizer = load_icrm_model(random_icrm_dir)
    assert CACHE_ARGUMENTS[0] == "cache" and cache_argument(model.model) == "cache"  # the tested transformers' name
    assert cache_argument(torch.nn.Linear(2, 2)) is None
    demos = [{"prompt": "Say yes?", "chosen": " yes", "rejected": " no"}] * 2
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ICRMReward(model, tokenizer, fixed_demonstrations=demos)(prompts=["Say yes?"] * 2, completions=[" yes", " no"])
    assert not [w for w in caught if "past_key_values" in str(w.message)]


def test_layer_types_and_windows_read_the_config_as_transformers_caches_do(default_model_dir):
    from transformers import AutoTokenizer

    from trl_icrm._trl_compat import layer_types_and_windows
    from trl_icrm.utils.testing import random_config

    tokenizer = AutoTokenizer.from_pretrained(default_model_dir)
    types, kwargs = layer_types_and_windows(random_config(tokenizer, "gemma2"))
    assert types == ["sliding_attention", "full_attention"] and kwargs == [{"sliding_window": 8}, {}]
    types, kwargs = layer_types_and_windows(random_config(tokenizer, "mistral"))
    assert types == ["sliding_attention"] * 2 and kwargs == [{"sliding_window": 8}] * 2
