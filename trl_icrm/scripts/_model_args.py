# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""How the training commands turn TRL's `ModelConfig` into model-loading arguments, as TRL's own scripts do."""

from __future__ import annotations

from typing import Any


def apply_model_args(model_args: Any, training_args: Any) -> None:
    """Set `training_args.model_init_kwargs` from `--model_revision`, `--dtype`, `--attn_implementation` and
    `--trust_remote_code` (explicit `model_init_kwargs` win), so that the trainer loads the model with them."""
    kwargs = {
        "revision": model_args.model_revision,
        "trust_remote_code": training_args.trust_remote_code,
        "attn_implementation": model_args.attn_implementation,
        "dtype": model_args.dtype,
    }
    kwargs.update(training_args.model_init_kwargs or {})
    training_args.model_init_kwargs = {key: value for key, value in kwargs.items() if value is not None}
