# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""Every private TRL / transformers name that trl-icrm touches, in one place.

trl-icrm builds on `trl.RewardTrainer` and `GRPOTrainer` through a few names that are not part of their public API.
Each is imported or named here and nowhere else, so that a TRL or transformers release that moves one fails in one
place, loudly and by name (`tests/test_trl_compat.py` checks every entry of [`PRIVATE_SYMBOLS`] and
[`REWARD_TRAINER_HOOKS`] against the installed versions).

- importable helpers: [`pad`], [`DataCollatorForPreference`], [`DataCollatorMixin`], [`unwrap_model_for_generation`];
- `RewardTrainer` internals that [`~trl_icrm.ICRMRewardTrainer`] overrides or reads ([`REWARD_TRAINER_HOOKS`],
  [`REWARD_TRAINER_STATE`]): its dataset preparation and train sampler (no public hook exists for either), and the
  metric buffers it logs from (so ICRM metrics are logged as TRL logs its own). Where a public hook exists it is used
  instead: `save_model` (not `_save`), `remove_unused_columns=False` (not the signature columns);
- transformers' DeepSpeed config registry ([`hide_hf_deepspeed_config`]), used to load scoring models whole under
  ZeRO-3;
- a GGUF-loaded model's attached quantizer ([`detach_quantizer`]), which blocks `save_pretrained`.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


PRIVATE_SYMBOLS = {
    "pad": "trl.trainer.utils",
    "DataCollatorForPreference": "trl.trainer.reward_trainer",
    "DataCollatorMixin": "transformers.data.data_collator",
    "unwrap_model_for_generation": "trl.models.utils",
    "_hf_deepspeed_config_weak_ref": "transformers.integrations.deepspeed",
    "unset_hf_deepspeed_config": "transformers.integrations.deepspeed",
}
"""Private names imported from TRL / transformers, with the module each lives in."""

REWARD_TRAINER_HOOKS = ("_prepare_dataset", "_get_train_sampler")
"""Private methods of `trl.RewardTrainer` that `ICRMRewardTrainer` overrides."""

REWARD_TRAINER_STATE = ("_metrics", "_total_train_tokens", "_tp_size")
"""Private attributes of a `trl.RewardTrainer` instance that `ICRMRewardTrainer` reads or writes."""


class TRLCompatibilityError(ImportError):
    """An installed TRL / transformers release no longer has a private name trl-icrm relies on."""


def private_symbol(name: str) -> Any:
    """The private name `name` of [`PRIVATE_SYMBOLS`], or a [`TRLCompatibilityError`] naming it and its module."""
    module_name = PRIVATE_SYMBOLS[name]
    try:
        return getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError) as error:
        raise TRLCompatibilityError(
            f"trl-icrm needs `{module_name}.{name}`, which the installed TRL/transformers release does not have "
            "(moved or removed). Install the TRL version trl-icrm declares, or report this."
        ) from error


def check_reward_trainer(trainer: Any) -> None:
    """Raise a [`TRLCompatibilityError`] naming each `RewardTrainer` hook or attribute that `trainer` lacks."""
    from trl import RewardTrainer

    missing = [f"RewardTrainer.{name}" for name in REWARD_TRAINER_HOOKS if not hasattr(RewardTrainer, name)]
    missing += [f"RewardTrainer().{name}" for name in REWARD_TRAINER_STATE if not hasattr(trainer, name)]
    if missing:
        raise TRLCompatibilityError(
            f"trl-icrm's ICRMRewardTrainer relies on {missing}, which the installed TRL release does not have."
        )


def pad(*args, **kwargs):
    """TRL's `pad` (`trl.trainer.utils.pad`): stacks 1-D tensors with padding on one side."""
    return private_symbol("pad")(*args, **kwargs)


def preference_collator(pad_token_id: int, pad_to_multiple_of: int | None = None):
    """TRL's reward collator (`trl.trainer.reward_trainer.DataCollatorForPreference`)."""
    return private_symbol("DataCollatorForPreference")(pad_token_id, pad_to_multiple_of)


def data_collator_mixin() -> type:
    """transformers' `DataCollatorMixin` (dispatches `__call__` to `torch_call`)."""
    return private_symbol("DataCollatorMixin")


def unwrap_model_for_generation(*args, **kwargs):
    """TRL's context manager that gives a generation-ready model under DeepSpeed / FSDP."""
    return private_symbol("unwrap_model_for_generation")(*args, **kwargs)


@contextmanager
def hide_hf_deepspeed_config() -> Iterator[None]:
    """Hide transformers' global DeepSpeed config inside the block (so `from_pretrained` does not partition under
    ZeRO-3) and restore it afterwards."""
    from transformers.integrations import deepspeed as hf_deepspeed

    unset_hf_deepspeed_config = private_symbol("unset_hf_deepspeed_config")
    saved = getattr(hf_deepspeed, "_hf_deepspeed_config_weak_ref", None)
    unset_hf_deepspeed_config()
    try:
        yield
    finally:
        hf_deepspeed._hf_deepspeed_config_weak_ref = saved


def detach_quantizer(model: Any) -> None:
    """Make a GGUF-loaded (already dequantized) model a plain model that `save_pretrained` accepts."""
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config


__all__ = [
    "PRIVATE_SYMBOLS",
    "REWARD_TRAINER_HOOKS",
    "REWARD_TRAINER_STATE",
    "TRLCompatibilityError",
    "check_reward_trainer",
    "data_collator_mixin",
    "detach_quantizer",
    "hide_hf_deepspeed_config",
    "pad",
    "preference_collator",
    "private_symbol",
    "unwrap_model_for_generation",
]
