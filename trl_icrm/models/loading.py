# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""Loading a backbone with a new or saved reward head, the toolkit every method's loader shares.

`model_locations` / `read_model_config` find a model folder, a PEFT adapter folder's base model and config, or a hub id
(with clear errors for missing folders and unfinished saves); [`load_sequence_classifier_with_head`] is the one
loading skeleton (dtype default, safetensors, adapter detection, config, `from_pretrained`, `PeftModel`, tokenizer)
that `load_icrm_model` and `load_vrm_model` fill in with their settings and head; `unwrap_peft` and
`backbone_and_head` reach the classifier under a PEFT wrapper.

Example:

```python
>>> from trl_icrm.models import read_model_config
>>> read_model_config("embedded:SmolLM2-135M-Instruct").model_type
'llama'
```
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer, PreTrainedModel

from ..utils.default_model import resolve_model_name_or_path
from ..utils.io import check_model_folder


LORA_TARGET_MODULES = ["q_proj", "k_proj", "v_proj", "o_proj", "up_proj", "down_proj", "gate_proj"]
"""The LoRA target modules of the recipes and examples: every linear layer of a Llama-style block (the embedded
SmolLM2, Qwen, Llama). Other architectures can pass `target_modules="all-linear"`."""


def describe_model_kind(config) -> str:
    """A few words naming the kind of reward model a transformers config belongs to (for error messages)."""
    if getattr(config, "vrm", None) is not None:
        return "a VRM reward model (`config.vrm`; score it with `VRMReward`)"
    if getattr(config, "icrm", None) is not None:
        return "an ICRM reward model (`config.icrm`; score it with `ICRMReward`)"
    architectures = getattr(config, "architectures", None) or []
    if getattr(config, "num_labels", None) == 1 and not any(a.endswith("ForCausalLM") for a in architectures):
        return "a Bradley-Terry reward model (a one-output sequence classifier)"
    return "no trained reward model (its config has neither `icrm` nor `vrm` settings)"


def saved_settings(config, settings: Any, settings_class: type, kind: str, name: str | os.PathLike) -> Any:
    """The `kind` settings (`ICRM`, `VRM`) saved in `config.<kind>` as a `settings_class`, refusing `settings` that
    differ (equal ones are returned: the caller's); `None` where the config has none saved."""
    saved = getattr(config, kind.lower(), None)
    if saved is None:
        return None
    saved = settings_class.from_dict(saved)
    if settings is not None and settings != saved:
        raise ValueError(
            f"{name} was trained with {kind} settings {saved}; refusing to load it with different ones {settings}."
        )
    return saved if settings is None else settings


def is_peft_folder(path: str | os.PathLike) -> bool:
    return Path(path, "adapter_config.json").is_file()


def check_local_path(path: str) -> None:
    """ "No such folder" for a path that names a local folder but is none, before anything would ask the hub for it: an
    absolute or relative (`./`, `~`) path, one of more than two parts, or one whose first part is a local folder (a
    mistyped `runs/bt2` next to `runs/bt1`). Anything else may be a hub id (`org/name`)."""
    if os.path.isdir(path):
        return
    parts = path.replace("\\", "/").split("/")
    local = (
        os.path.isabs(path)
        or path.startswith((".", "~"))
        or len(parts) > 2
        or "" in parts
        or (len(parts) == 2 and os.path.isdir(parts[0]))
    )
    if local:
        raise FileNotFoundError(
            f"No such folder: {path!r} is neither a local model folder nor a model on the hub (a local path that "
            "does not exist; the hub was not asked)."
        )


def model_locations(path: str | os.PathLike) -> tuple[str, str]:
    """`(base_path, config_path)` of a resolved model folder: for a PEFT adapter folder, its base model and the folder
    holding the config (the adapter's own `config.json` if saved with it, else the base model's); else `path` twice."""
    path = os.fspath(path)
    check_local_path(path)
    check_model_folder(path)
    if not is_peft_folder(path):
        return path, path
    with open(Path(path, "adapter_config.json"), encoding="utf-8") as handle:
        base_path = resolve_model_name_or_path(json.load(handle)["base_model_name_or_path"])
    return base_path, path if Path(path, "config.json").is_file() else base_path


def load_config(config_path: str, trust_remote_code: bool = False, name: str | os.PathLike | None = None):
    """`AutoConfig.from_pretrained(config_path)`, with one clear error when there is no model there."""
    try:
        return AutoConfig.from_pretrained(config_path, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as error:
        raise FileNotFoundError(
            f"{os.fspath(name or config_path)!r} is neither a local model folder nor a model on the hub that can be "
            f"reached (check the path; offline, only local folders load). Details: {str(error).splitlines()[0]}"
        ) from error


def read_model_config(model_name_or_path: str | os.PathLike, trust_remote_code: bool = False):
    """The transformers config of a model folder, PEFT adapter folder (see [`model_locations`]) or hub id."""
    _, config_path = model_locations(resolve_model_name_or_path(model_name_or_path))
    return load_config(config_path, trust_remote_code, model_name_or_path)


def prepare_tokenizer(tokenizer, model: PreTrainedModel | None = None):
    """Give the tokenizer a pad token (its eos for Llama-style tokenizers that have none, as TRL does) and tell the
    model's config, which a sequence classifier needs to find the last non-pad token."""
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            raise ValueError("The tokenizer has neither a pad token nor an eos token; set `tokenizer.pad_token`.")
        tokenizer.pad_token = tokenizer.eos_token
    if model is not None:
        model.config.get_text_config().pad_token_id = tokenizer.pad_token_id
        model.config.pad_token_id = tokenizer.pad_token_id
    return tokenizer


@contextlib.contextmanager
def transformers_errors_only():
    """Inside the block transformers logs errors only (its public verbosity setting, restored afterwards)."""
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)


def load_sequence_classifier_with_head(
    model_name_or_path: str | os.PathLike,
    configure: Callable[[Any], Any],
    tokenizer_name_or_path: str | os.PathLike | None = None,
    trust_remote_code: bool = False,
    attach_head: Callable[[PreTrainedModel, Any, str, bool], None] | None = None,
    quiet: bool = False,
    **model_init_kwargs,
) -> tuple[PreTrainedModel, Any]:
    """The loading skeleton of every method: a sequence classifier with the method's head, and its tokenizer.

    Args:
        model_name_or_path: A saved model folder, a PEFT adapter folder of one, a hub id, or a backbone.
        configure: Called with the transformers config before the model is built: checks the method's saved settings
            (raising for a model of another kind) and writes the settings, labels and head size into it; what it
            returns is passed on to `attach_head`.
        tokenizer_name_or_path: Tokenizer location if not the model's.
        trust_remote_code: Forwarded to transformers (off by default).
        attach_head: Called as `attach_head(model, configured, base_path, adapter)` after `from_pretrained` and before the adapter
            is applied, for a head that is not a plain `score` layer.
        quiet: Silence transformers' "newly initialized" report also without an adapter (a head replaced right
            after); with an adapter it is always silenced, as the adapter restores the head.
        **model_init_kwargs: Forwarded to `AutoModelForSequenceClassification.from_pretrained` (`dtype` defaults to
            fp32, `use_safetensors` to `True`).

    Returns:
        `(model, tokenizer)`; the model is in eval mode.
    """
    path = resolve_model_name_or_path(model_name_or_path)
    model_init_kwargs.setdefault("dtype", torch.float32)
    if isinstance(model_init_kwargs["dtype"], str) and model_init_kwargs["dtype"] != "auto":
        model_init_kwargs["dtype"] = getattr(torch, model_init_kwargs["dtype"])  # "bfloat16" -> torch.bfloat16
    model_init_kwargs.setdefault("use_safetensors", True)
    adapter = is_peft_folder(path)
    base_path, config_path = model_locations(path)
    config = load_config(config_path, trust_remote_code, model_name_or_path)
    configured = configure(config)
    with transformers_errors_only() if adapter or quiet else contextlib.nullcontext():
        model = AutoModelForSequenceClassification.from_pretrained(
            base_path, config=config, trust_remote_code=trust_remote_code, **model_init_kwargs
        )
    if attach_head is not None:
        attach_head(model, configured, base_path, adapter)
    if adapter:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, path)
    tokenizer = AutoTokenizer.from_pretrained(
        resolve_model_name_or_path(tokenizer_name_or_path or path), trust_remote_code=trust_remote_code
    )
    prepare_tokenizer(tokenizer, model)
    model.eval()
    return model, tokenizer


def unwrap_peft(model) -> PreTrainedModel:
    """The sequence classifier under a PEFT wrapper (its LoRA layers stay injected in it)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def backbone_and_head(model) -> tuple[torch.nn.Module, torch.nn.Module]:
    """The backbone and the `score` head of a (possibly PEFT-wrapped) sequence classifier."""
    inner = unwrap_peft(model)
    backbone = getattr(inner, inner.base_model_prefix, None)
    head = getattr(inner, "score", None)
    if backbone is None or head is None:
        raise TypeError(f"{type(inner).__name__} has no `{inner.base_model_prefix}` backbone with a `score` head.")
    return backbone, head
