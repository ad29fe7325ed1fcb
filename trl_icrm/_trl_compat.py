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
- transformers' reading of a config's attention layer types and windows ([`layer_types_and_windows`]), as its
  caches read them, which the prefix-sharing paths mask by;
- a GGUF-loaded model's attached quantizer ([`detach_quantizer`]), which blocks `save_pretrained`;
- the name of a model's key-value cache argument ([`cache_argument`]): transformers renamed `past_key_values` to
  `cache` (the old name is deprecated, to be removed in 5.40); the new name is used where a model's `forward` has it.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
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


CACHE_ARGUMENTS = ("cache", "past_key_values")
"""Names of the key-value cache argument of transformers models' `forward`, the current one first."""


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


def layer_types_and_windows(config: Any) -> tuple[list[str], list[dict]]:
    """transformers' `(layer types, per-layer cache kwargs)` of a decoder config
    (`transformers.cache_utils.get_layer_types_and_kwargs`): the window of sliding layers and the chunk size of
    chunked layers are each layer's `sliding_window` kwarg."""
    from transformers.cache_utils import get_layer_types_and_kwargs

    return get_layer_types_and_kwargs(config)


def cache_argument(module: Any) -> str | None:
    """The name under which `module.forward` takes a key-value cache: the first of [`CACHE_ARGUMENTS`] its signature
    has (chosen once per class), or `None` if it takes none."""
    return _cache_argument_of(type(module))


@cache
def _cache_argument_of(module_class: type) -> str | None:
    parameters = inspect.signature(module_class.forward).parameters
    return next((name for name in CACHE_ARGUMENTS if name in parameters), None)


__all__ = [
    "CACHE_ARGUMENTS",
    "PRIVATE_SYMBOLS",
    "REWARD_TRAINER_HOOKS",
    "REWARD_TRAINER_STATE",
    "TRLCompatibilityError",
    "cache_argument",
    "check_reward_trainer",
    "data_collator_mixin",
    "detach_quantizer",
    "hide_hf_deepspeed_config",
    "layer_types_and_windows",
    "pad",
    "preference_collator",
    "private_symbol",
    "unwrap_model_for_generation",
]
