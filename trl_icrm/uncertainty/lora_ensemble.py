# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""LoRA ensembles: M PEFT adapters (each with its own score head) on one base model, optionally only in its last L
decoder blocks, so that the blocks below run once for all M members.

Each member is a BT reward model trained on its own (`trl.RewardTrainer` with a LoRA config restricted by
[`restrict_to_last_layers`], its own seed) and saved as an adapter folder `member_<m>/`; `lora_ensemble_config.json`
lists them. [`load_lora_ensemble`] loads the base model once and every member as a named adapter (PEFT
multi-adapter). [`lora_member_scores`] scores a batch with every member: the first member's pass records the output
of the last block without LoRA weights; the others' passes skip the blocks below it and start from that output (the
skipped blocks return it, or their input, unchanged), so their cost is the adapted blocks and the head only. The
scores equal M separate full passes.

Example:

```python
from trl_icrm.uncertainty.lora_ensemble import load_lora_ensemble

model, tokenizer, names = load_lora_ensemble("outputs/math-lora-ensemble")
```
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..models import backbone_and_head


LORA_ENSEMBLE_CONFIG = "lora_ensemble_config.json"


def is_lora_ensemble_folder(path: str | os.PathLike) -> bool:
    return Path(path, LORA_ENSEMBLE_CONFIG).is_file()


def decoder_layers(model: nn.Module) -> nn.ModuleList:
    """The decoder blocks of a (PEFT-wrapped) sequence classifier's backbone: its `layers` (Llama, Qwen, Mistral,
    Gemma, GPT-NeoX) or `h` (GPT-2) module list."""
    backbone, _ = backbone_and_head(model)
    for name in ("layers", "h"):
        layers = getattr(backbone, name, None)
        if isinstance(layers, nn.ModuleList):
            return layers
    raise TypeError(f"{type(backbone).__name__} has no `layers` or `h` module list of decoder blocks.")


def restrict_to_last_layers(peft_config: Any, num_layers: int, last_layers: int | None) -> Any:
    """A copy of a LoRA config that adapts only the last `last_layers` of `num_layers` blocks (`None` or 0: all)."""
    peft_config = copy.deepcopy(peft_config)
    if last_layers:
        if not 0 < last_layers <= num_layers:
            raise ValueError(f"last_layers must be in [1, {num_layers}] (the model's blocks), got {last_layers}.")
        peft_config.layers_to_transform = list(range(num_layers - last_layers, num_layers))
    return peft_config


def first_adapted_layer(model: nn.Module) -> int:
    """The index of the lowest decoder block holding LoRA weights: the blocks below it are shared by every adapter.
    0 when any LoRA weight sits outside the blocks (e.g. on the embeddings)."""
    layers = decoder_layers(model)
    index_of = {id(parameter): i for i, layer in enumerate(layers) for parameter in layer.parameters()}
    lowest = len(layers)
    for name, parameter in model.named_parameters():
        if ".lora_" in name:
            if id(parameter) not in index_of:
                return 0
            lowest = min(lowest, index_of[id(parameter)])
    return lowest


class _SkippedBlock(nn.Module):
    """Stands in for a block below the adapted ones: returns the recorded output (the last shared block), or its
    input unchanged in the recorded output's structure (the blocks below that)."""

    def __init__(self, recorded: Any, last: bool):
        super().__init__()
        self.recorded, self.last = recorded, last

    def forward(self, hidden_states, *args, **kwargs):
        if self.last:
            return self.recorded
        return (hidden_states, *self.recorded[1:]) if isinstance(self.recorded, tuple) else hidden_states


@contextlib.contextmanager
def _skipping(layers: nn.ModuleList, shared: int, recorded: Any) -> Iterator[None]:
    originals = [layers[i] for i in range(shared)]
    try:
        for i in range(shared):
            layers[i] = _SkippedBlock(recorded, last=i == shared - 1)
        yield
    finally:
        for i, layer in enumerate(originals):
            layers[i] = layer


@torch.no_grad()
def lora_member_scores(
    model: nn.Module, adapters: Sequence[str], ids: torch.Tensor, mask: torch.Tensor, share_lower: bool = True
) -> torch.Tensor:
    """`(len(adapters), batch)` scores of each adapter on one batch; the blocks below the adapted ones run once
    (with `share_lower`), the rest per adapter."""
    layers, shared = decoder_layers(model), first_adapted_layer(model) if share_lower else 0
    recorded, scores = {}, []

    def record(module, args, output):
        recorded["output"] = output

    for m, adapter in enumerate(adapters):
        model.set_adapter(adapter)
        hook = layers[shared - 1].register_forward_hook(record) if shared and m == 0 else None
        with _skipping(layers, shared, recorded.get("output")) if shared and m > 0 else contextlib.nullcontext():
            scores.append(model(input_ids=ids, attention_mask=mask, use_cache=False).logits[:, 0])
        if hook is not None:
            hook.remove()
    return torch.stack(scores)


def write_lora_ensemble_config(output_dir: str | os.PathLike, member_dirs: Sequence[str], **settings: Any) -> str:
    """Write `lora_ensemble_config.json`: the members' adapter folders (relative to `output_dir`) and `settings`."""
    path = Path(output_dir, LORA_ENSEMBLE_CONFIG)
    members = [os.path.relpath(folder, output_dir) for folder in member_dirs]
    path.write_text(json.dumps({"members": members, **settings}, indent=2), encoding="utf-8")
    return str(path)


def load_lora_ensemble(folder: str | os.PathLike, trust_remote_code: bool = False) -> tuple[Any, Any, list[str]]:
    """`(model, tokenizer, adapter names)`: the base model once, as a `PeftModel` with every member's adapter (and
    score head) loaded by name (`member_<m>`), in eval mode."""
    from peft import PeftModel
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from ..models import model_locations, prepare_tokenizer, transformers_errors_only, unwrap_peft
    from ..utils.io import check_model_folder

    settings = json.loads(Path(folder, LORA_ENSEMBLE_CONFIG).read_text(encoding="utf-8"))
    members = [str(Path(folder, member)) for member in settings["members"]]
    if len(members) < 2:
        raise ValueError(f"{folder} lists {len(members)} LoRA members; an ensemble needs at least 2.")
    for member in members:
        check_model_folder(member)
        if not Path(member, "adapter_config.json").is_file():
            raise ValueError(f"{member} is not a PEFT adapter folder; a LoRA ensemble's members are adapters.")
    base_path, _ = model_locations(members[0])
    with transformers_errors_only():
        base = AutoModelForSequenceClassification.from_pretrained(
            base_path, num_labels=1, dtype=torch.float32, use_safetensors=True, trust_remote_code=trust_remote_code
        )
    names = [f"member_{m}" for m in range(len(members))]
    model = PeftModel.from_pretrained(base, members[0], adapter_name=names[0])
    for name, member in zip(names[1:], members[1:], strict=True):
        model.load_adapter(member, adapter_name=name)
    tokenizer = AutoTokenizer.from_pretrained(members[0], trust_remote_code=trust_remote_code)
    prepare_tokenizer(tokenizer, unwrap_peft(model))
    return model.eval(), tokenizer, names


__all__ = [
    "LORA_ENSEMBLE_CONFIG",
    "decoder_layers",
    "first_adapted_layer",
    "is_lora_ensemble_folder",
    "load_lora_ensemble",
    "lora_member_scores",
    "restrict_to_last_layers",
    "write_lora_ensemble_config",
]
