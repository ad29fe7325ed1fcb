# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""The conventional Bradley-Terry baseline, which is `trl.RewardTrainer` itself: the helpers that make it comparable.

- [`bt_config_from`]: a `trl.RewardConfig` with every value an ICRM config shares with it (budget, seed, schedule),
  so a BT model trains exactly as its ICRM counterpart does;
- [`save_reward_model`]: save a trained reward model as a plain folder that any loader reads (a LoRA adapter merged
  first), on the main process only.

Example:

```python
from trl import RewardTrainer
from trl_icrm import ICRMConfig, bt_config_from, save_reward_model

icrm_args = ICRMConfig(output_dir="outputs/bt", max_steps=100, learning_rate=5e-4)
trainer = RewardTrainer("embedded-model-path", args=bt_config_from(icrm_args), train_dataset=pairs)
trainer.train()
save_reward_model(trainer, "outputs/bt")
```
"""

from __future__ import annotations

import os
from dataclasses import MISSING, fields
from typing import Any


_PASSED_AS_GIVEN = ("logging_dir", "accelerator_config", "deepspeed", "fsdp_config")
"""Fields that `__post_init__` turns into objects, or that only stand for others: passed as the user gave them."""


def bt_config_from(args: Any, config_class: type | None = None, **overrides: Any):
    """A `trl.RewardConfig` (or `config_class`, e.g. `VRMConfig`) with the values of `args` (e.g. an `ICRMConfig`) for
    every field they share and that differs from its default, then `overrides`."""
    if config_class is None:
        from trl import RewardConfig as config_class
    values = {
        f.name: getattr(args, f.name)
        for f in fields(config_class)
        if f.init and hasattr(args, f.name) and (f.default is MISSING or getattr(args, f.name) != f.default)
    }
    for name in _PASSED_AS_GIVEN:
        values.pop(name, None)
    if isinstance(values.get("report_to"), str):
        values["report_to"] = [values["report_to"]]
    values["deepspeed"] = getattr(args, "deepspeed", None)
    return config_class(**{**values, **overrides})


def save_reward_model(trainer: Any, output_dir: str | os.PathLike, merge: bool = True) -> str:
    """Save `trainer`'s reward model and tokenizer to `output_dir` as a plain model folder: a PEFT model is merged
    first (then only the main process writes); otherwise `trainer.save_model` (a collective under ZeRO-3).

    With `merge=False` a PEFT model is saved as its adapter folder, with the classifier's config (one output) next to
    it, so its kind is read as any BT model's and a Laplace posterior can cover its LoRA weights.

    The folder then holds exactly this model: the weights of a model saved there before are removed first, and a save
    that does not finish leaves a folder that loaders refuse ([`~trl_icrm.utils.io.saving_model`])."""
    from ..utils.io import saving_model

    output_dir = os.fspath(output_dir)
    model = trainer.model
    with saving_model(output_dir, enabled=trainer.args.should_save):
        if not hasattr(model, "merge_and_unload") or not merge:
            trainer.save_model(output_dir)
            if hasattr(model, "merge_and_unload") and trainer.accelerator.is_main_process:
                model.get_base_model().config.save_pretrained(output_dir)
        elif trainer.accelerator.is_main_process:
            model.merge_and_unload().save_pretrained(output_dir)
            trainer.processing_class.save_pretrained(output_dir)
    return output_dir


__all__ = ["bt_config_from", "save_reward_model"]
