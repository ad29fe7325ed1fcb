# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""The thinnest adapters between a Bradley-Terry sequence classifier and laplace-torch's `"reward_modeling"`
likelihood, which wants one tensor in, `(batch, 2)` rewards out (fit) and `(batch, 1)` out (prediction).

- [`PairwiseRewardAdapter`] (the LoRA subset): token rows `(batch, k, length)`, right-padded with `-1`, through the
  whole PEFT model; the pad positions get the tokenizer's pad id and attention mask 0 inside, exactly as the MAP
  scorer pads them, so the adapter's output *is* the MAP reward.
- [`HeadAdapter`] (the last-layer subset): pooled last hidden states `(batch, k, hidden)` through a copy of the
  classifier's `score` head; the features come from [`pooled_features`].
- [`encode_pairs`] / [`pack_rows`]: preference pairs and completions as those tensors.

Example:

```python
>>> import torch
>>> from trl_icrm.laplace.adapter import pack_rows
>>> pack_rows([[5, 6, 7], [8]]).tolist()
[[[5, 6, 7]], [[8, -1, -1]]]
```
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from ..models import backbone_and_head, pad_right, unwrap_peft
from ..models.features import last_token_features


PAD = -1
"""The padding value of the token tensors the adapters take (token ids are >= 0)."""

SUBSETS = ("lora", "last_layer")
"""Which weights carry the posterior: every trainable weight of a PEFT LoRA model (the LoRA matrices and the score
head PEFT trains with them), or the score head alone."""


class NotARewardModelError(ValueError):
    """The model is not a one-output (Bradley-Terry) sequence classifier, or lacks the LoRA weights asked for."""


def check_bt_classifier(model: Any, subset: str) -> None:
    """Raise a [`NotARewardModelError`] naming the problem unless `model` is a one-output sequence classifier with a
    `score` head and, for `subset="lora"`, a PEFT model with LoRA weights."""
    if subset not in SUBSETS:
        raise ValueError(f"Unknown subset {subset!r}; expected one of {SUBSETS}.")
    inner = unwrap_peft(model)
    config = getattr(inner, "config", None)
    if config is not None and getattr(config, "icrm", None) is not None:
        raise NotARewardModelError("This is an ICRM model; a Laplace posterior is fitted to a BT reward model.")
    if getattr(config, "num_labels", None) != 1 or not type(inner).__name__.endswith("ForSequenceClassification"):
        raise NotARewardModelError(
            f"{type(inner).__name__} (num_labels={getattr(config, 'num_labels', None)}) is not a Bradley-Terry reward "
            "model: a Laplace posterior needs a sequence classifier with one output (trl.RewardTrainer's)."
        )
    try:
        backbone_and_head(model)
    except TypeError as error:
        raise NotARewardModelError(str(error)) from error
    if subset == "lora" and not lora_parameter_names(model):
        raise NotARewardModelError(
            "subset='lora' needs a PEFT LoRA model (a saved adapter folder, e.g. `trl-icrm train --method bt "
            "--no_merge_lora`); this model has no LoRA weights. Use subset='last_layer' for a merged or full model."
        )


def lora_parameter_names(model: nn.Module) -> list[str]:
    """Names of the LoRA matrices of a PEFT model (empty for any other model)."""
    return [name for name, _ in model.named_parameters() if ".lora_A." in name or ".lora_B." in name]


def select_lora_subset(model: nn.Module) -> list[str]:
    """Make exactly the weights PEFT trains (LoRA matrices and `modules_to_save`, e.g. the score head) require grad,
    freeze the rest, and return their names: the parameters laplace-torch's `subset_of_weights="all"` then covers."""
    names = []
    for name, parameter in model.named_parameters():
        trained = ".lora_A." in name or ".lora_B." in name or ".modules_to_save." in name
        parameter.requires_grad_(trained)
        if trained:
            names.append(name)
    return names


def use_eager_attention(model: nn.Module) -> None:
    """Eager attention: laplace-torch's Jacobians (torch.func) need derivatives that the fused CPU kernels lack."""
    inner = unwrap_peft(model)
    if hasattr(inner, "set_attn_implementation"):
        inner.set_attn_implementation("eager")
    else:  # pragma: no cover - older transformers
        inner.config._attn_implementation = "eager"


class PairwiseRewardAdapter(nn.Module):
    """`(batch, k, length)` token ids padded with [`PAD`] -> `(batch, k)` rewards of a sequence classifier.

    Args:
        model: The (PEFT) sequence classifier; its parameters are the adapter's.
        pad_token_id: The id the classifier's pooling treats as padding (as the MAP scorer pads).
    """

    def __init__(self, model: nn.Module, pad_token_id: int):
        super().__init__()
        self.model = model
        self.pad_token_id = int(pad_token_id)

    def forward(self, rows: torch.Tensor) -> torch.Tensor:
        shape = rows.shape
        rows = rows.reshape(-1, shape[-1])
        ids = torch.where(rows >= 0, rows, torch.full_like(rows, self.pad_token_id))
        logits = self.model(input_ids=ids, attention_mask=(rows >= 0).long(), use_cache=False).logits
        return logits[:, 0].reshape(shape[:-1])


class HeadAdapter(nn.Module):
    """`(batch, k, hidden)` pooled features -> `(batch, k)` rewards through a copy of the classifier's `score` head
    (in its dtype, on its device)."""

    def __init__(self, head: nn.Linear):
        super().__init__()
        weight = head.weight
        self.head = nn.Linear(
            head.in_features, 1, bias=head.bias is not None, device=weight.device, dtype=weight.dtype
        )
        self.head.load_state_dict({key: value.detach().clone() for key, value in head.state_dict().items()})

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(features).squeeze(-1)


def score_head(model: nn.Module) -> nn.Linear:
    """The classifier's `score` linear layer (the trained copy under PEFT's `modules_to_save`)."""
    _, head = backbone_and_head(model)
    saved = getattr(head, "modules_to_save", None)  # PEFT's trained copy of the head, by adapter name
    if saved is not None and len(saved):
        head = saved["default"] if "default" in saved else next(iter(saved.values()))
    if not isinstance(head, nn.Linear):
        raise NotARewardModelError(f"The score head is a {type(head).__name__}, not a linear layer.")
    return head


@torch.no_grad()
def pooled_features(model: nn.Module, rows: torch.Tensor, pad_token_id: int) -> torch.Tensor:
    """Last hidden state at the position the classifier pools (its rightmost non-pad token): `(batch, k, length)`
    rows padded with [`PAD`] -> `(batch, k, hidden)` ([`~trl_icrm.models.features.last_token_features`])."""
    backbone, _ = backbone_and_head(model)
    shape = rows.shape
    flat = rows.reshape(-1, shape[-1])
    ids = torch.where(flat >= 0, flat, torch.full_like(flat, pad_token_id))
    return last_token_features(backbone, ids, (flat >= 0).long(), pad_token_id).reshape(*shape[:-1], -1)


def pack_rows(rows: Sequence[Sequence[int]], per_item: int = 1) -> torch.Tensor:
    """Token rows as `(len(rows) // per_item, per_item, longest)`, right-padded with [`PAD`]."""
    ids, mask = pad_right(rows, 0)
    ids = ids.masked_fill(mask == 0, PAD)
    return ids.reshape(len(rows) // per_item, per_item, -1)


def encode_pairs(
    renderer: Any, pairs: Sequence[Mapping[str, Any]], max_length: int | None = None
) -> list[tuple[list[int], list[int]]]:
    """`(chosen ids, rejected ids)` of each preference pair (`prompt` optional, `chosen`, `rejected`), tokenized as
    `trl.RewardTrainer` tokenizes them and cut to `max_length` as its collator does."""
    encoded = []
    for index, pair in enumerate(pairs):
        if not isinstance(pair, Mapping) or "chosen" not in pair or "rejected" not in pair:
            keys = sorted(pair) if isinstance(pair, Mapping) else type(pair).__name__
            raise ValueError(
                f"Preference pair {index} must have 'chosen' and 'rejected' (and optionally 'prompt'), got {keys}."
            )
        sides = [renderer.encode_query(pair.get("prompt"), pair[key]) for key in ("chosen", "rejected")]
        encoded.append(tuple(side[:max_length] if max_length else side for side in sides))
    return encoded


__all__ = [
    "PAD",
    "SUBSETS",
    "HeadAdapter",
    "NotARewardModelError",
    "PairwiseRewardAdapter",
    "check_bt_classifier",
    "encode_pairs",
    "lora_parameter_names",
    "pack_rows",
    "pooled_features",
    "score_head",
    "select_lora_subset",
    "use_eager_attention",
]
