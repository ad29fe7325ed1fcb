# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""The VRM reward model: a backbone with a weight head, a feature head and a score map; its settings and loading.

A VRM model is an `AutoModelForSequenceClassification` whose `score` head is a [`VRMHead`]. One forward pass of
`prompt + response` gives two hidden states: h_x at the last prompt token (causal attention: it depends on the
prompt only) and h_xy at the last token. The head maps

- h_x to the Dirichlet concentration alpha = softplus(A h_x + a) + eps of the objective weights q(w | x) (D of them);
- h_xy to the mean and standard deviation of the semantic features q(z | x, y) = Normal(mu, diag sigma^2) (d of them);

and holds the score map s = G z + b (its `score_map` linear layer). The settings (D, d, priors, loss weights) live in
`config.vrm`; `save_pretrained` writes the head with the backbone (safetensors), [`load_vrm_model`] restores it, with
or without a LoRA adapter (an adapter folder keeps the head as a module to save, as for ICRM).

Example:

```python
>>> from trl_icrm.vrm.modeling import VRMSettings, load_vrm_model
>>> model, tokenizer = load_vrm_model("embedded:SmolLM2-135M-Instruct", VRMSettings(num_objectives=8))  # new head
>>> model.config.vrm["num_objectives"], type(model.score).__name__
(8, 'VRMHead')
```
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel

from ..models.loading import (
    backbone_and_head,
    describe_model_kind,
    load_sequence_classifier_with_head,
    saved_settings,
)
from .objective import SUPERVISION_LOSSES


@dataclass
class VRMSettings:
    """The VRM settings a model is trained and scored with, stored in `config.vrm`."""

    num_objectives: int = 32
    num_features: int = 4
    prior_concentration: float = 1.0
    prior_std: float = 1.0
    beta_w: float = 0.1
    beta_z: float = 0.1
    supervision_weight: float = 1.0
    supervision_loss: str = "bt"
    hinge_margin: float = 1.0
    train_samples: int = 1
    scoring_samples: int = 0
    eps: float = 1e-3
    max_length: int | None = field(default=None, compare=False)

    def check(self) -> VRMSettings:
        """Raise a `ValueError` naming the first setting out of range; returns the settings."""
        problems = [
            (self.num_objectives < 2, f"num_objectives (D) must be >= 2, got {self.num_objectives}"),
            (self.num_features < 1, f"num_features (d) must be >= 1, got {self.num_features}"),
            (not self.prior_concentration > 0, f"prior_concentration must be > 0, got {self.prior_concentration}"),
            (not self.prior_std > 0, f"prior_std must be > 0, got {self.prior_std}"),
            (not self.beta_w >= 0, f"beta_w must be >= 0, got {self.beta_w}"),
            (not self.beta_z >= 0, f"beta_z must be >= 0, got {self.beta_z}"),
            (
                not self.supervision_weight >= 0,
                f"supervision_weight (lambda) must be >= 0, got {self.supervision_weight}",
            ),
            (
                self.supervision_loss not in SUPERVISION_LOSSES,
                f"supervision_loss must be one of {list(SUPERVISION_LOSSES)}, got {self.supervision_loss!r}",
            ),
            (self.train_samples < 1, f"train_samples must be >= 1, got {self.train_samples}"),
            (self.scoring_samples < 0, f"scoring_samples must be >= 0 (0: exact moments), got {self.scoring_samples}"),
            (not self.eps > 0, f"eps must be > 0, got {self.eps}"),
        ]
        for bad, message in problems:
            if bad:
                raise ValueError(message + ".")
        return self

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> VRMSettings:
        return cls(**dict(values)).check()

    @classmethod
    def from_config(cls, config) -> VRMSettings:
        """Settings saved in a model config; raises naming the model's kind if it is not a VRM model's."""
        values = getattr(config, "vrm", None)
        if values is None:
            raise ValueError(
                f"This model is {describe_model_kind(config)}, not a VRM reward model (its config has no `vrm` "
                "settings). Train one with `VRMRewardTrainer`, or score this one with `trl_icrm.load_reward`."
            )
        return cls.from_dict(values)

    def save_to_config(self, config) -> None:
        config.vrm = self.to_dict()


@dataclass
class VRMHeadOutput:
    """What the VRM head gives for a batch of rows."""

    concentration: torch.Tensor  # (rows, D), from the prompt end
    feature_mean: torch.Tensor  # (rows, d), from the response end
    feature_std: torch.Tensor  # (rows, d)
    score_weight: torch.Tensor  # G, (D, d)
    score_bias: torch.Tensor  # b, (D,)


class VRMHead(nn.Module):
    """Weight head (prompt end -> Dirichlet concentration), feature head (response end -> mean, std) and score map."""

    def __init__(self, hidden_size: int, num_objectives: int, num_features: int, eps: float = 1e-3):
        super().__init__()
        self.eps = eps
        self.weight_head = nn.Linear(hidden_size, num_objectives)
        self.feature_head = nn.Linear(hidden_size, 2 * num_features)
        self.score_map = nn.Linear(num_features, num_objectives)
        for layer in (self.weight_head, self.feature_head):
            nn.init.normal_(layer.weight, std=0.02)
            nn.init.zeros_(layer.bias)
        nn.init.normal_(self.score_map.weight, std=num_features**-0.5)
        nn.init.zeros_(self.score_map.bias)

    def forward(self, prompt_hidden: torch.Tensor, response_hidden: torch.Tensor) -> VRMHeadOutput:
        concentration = F.softplus(self.weight_head(prompt_hidden)) + self.eps
        mean, raw_std = self.feature_head(response_hidden).chunk(2, dim=-1)
        return VRMHeadOutput(
            concentration, mean, F.softplus(raw_std) + self.eps, self.score_map.weight, self.score_map.bias
        )


def _head_state_dict(folder: str) -> dict[str, torch.Tensor]:
    """The `score.*` tensors of a saved model folder (single or sharded safetensors), without the prefix."""
    from safetensors.torch import load_file

    index = Path(folder, "model.safetensors.index.json")
    if index.is_file():
        weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
        files = sorted({name for key, name in weight_map.items() if key.startswith("score.")})
    else:
        files = ["model.safetensors"]
    state = {}
    for name in files:
        tensors = load_file(os.path.join(folder, name))
        state.update({key[len("score.") :]: value for key, value in tensors.items() if key.startswith("score.")})
    return state


def attach_vrm_head(model: PreTrainedModel, settings: VRMSettings) -> VRMHead:
    """Replace the sequence classifier's `score` layer with a new [`VRMHead`] (same device and dtype)."""
    reference = model.score.weight
    head = VRMHead(
        model.config.get_text_config().hidden_size, settings.num_objectives, settings.num_features, settings.eps
    )
    model.score = head.to(device=reference.device, dtype=reference.dtype)
    return model.score


def _settings_for(config, settings: VRMSettings | None, name, allow_new_head: bool) -> tuple[VRMSettings, bool]:
    """(settings, saved): the saved settings of a VRM config (refusing different ones), or `settings` for a new head."""
    saved = saved_settings(config, settings, VRMSettings, "VRM", name)
    if saved is not None:
        return saved, True
    if getattr(config, "icrm", None) is not None or not allow_new_head:
        raise ValueError(
            f"{name} is {describe_model_kind(config)}, not a VRM reward model (its config has no `vrm` settings). "
            "Score it with `trl_icrm.load_reward`, or train a VRM model with `VRMRewardTrainer`."
        )
    return (settings or VRMSettings()).check(), False


def load_vrm_model(
    model_name_or_path: str | os.PathLike,
    settings: VRMSettings | None = None,
    tokenizer_name_or_path: str | None = None,
    trust_remote_code: bool = False,
    allow_new_head: bool = True,
    **model_init_kwargs,
) -> tuple[PreTrainedModel, Any]:
    """Load a VRM reward model and its tokenizer.

    Args:
        model_name_or_path: A saved VRM model folder, a PEFT adapter folder of one, or a causal-LM backbone (or
            `"embedded:SmolLM2-135M-Instruct"`) to start a new VRM model from (its head is then new).
        settings: Settings of a new model; for a saved VRM model they come from its config (different ones: error).
        tokenizer_name_or_path: Tokenizer location if not the model's.
        trust_remote_code: Forwarded to transformers.
        allow_new_head: Whether a model without VRM settings may get a new (random) head; scorers pass `False`.
        **model_init_kwargs: Forwarded to `AutoModelForSequenceClassification.from_pretrained`.

    Returns:
        `(model, tokenizer)`, the model in eval mode.
    """

    def configure(config) -> tuple[VRMSettings, bool]:
        chosen, saved = _settings_for(config, settings, model_name_or_path, allow_new_head)
        chosen.save_to_config(config)
        config.num_labels = 1
        config.id2label, config.label2id = {0: "reward"}, {"reward": 0}
        return chosen, saved

    def attach_head(model, configured: tuple[VRMSettings, bool], base_path: str, adapter: bool) -> None:
        head = attach_vrm_head(model, configured[0])
        if configured[1] and not adapter:
            head.load_state_dict(_head_state_dict(base_path))

    # the saved head is not a plain `score` layer: transformers' report of it is silenced, it is restored right after
    return load_sequence_classifier_with_head(
        model_name_or_path,
        configure,
        tokenizer_name_or_path,
        trust_remote_code,
        attach_head=attach_head,
        quiet=True,
        **model_init_kwargs,
    )


def vrm_settings_of(model) -> VRMSettings:
    """The VRM settings of a (possibly PEFT-wrapped) model."""
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    return VRMSettings.from_config(inner.config)


def encode_prompt(tokenizer, prompt: Any) -> list[int]:
    """Token ids of the prompt alone, rendered as the start of `prompt + response` is (chat template with the
    generation prompt for conversational prompts, plain text otherwise)."""
    if not prompt:
        return []
    if isinstance(prompt, str):
        return list(tokenizer(prompt)["input_ids"])
    rendered = tokenizer.apply_chat_template(list(prompt), tokenize=True, add_generation_prompt=True, return_dict=True)
    return list(rendered["input_ids"])


def prompt_length(query_ids: list[int], prompt_ids: list[int]) -> int:
    """Leading tokens of `query_ids` that are the prompt's (their common prefix), at least 1: the weight head reads
    the hidden state of the last of them, which depends on the prompt only."""
    length = 0
    for a, b in zip(query_ids, prompt_ids, strict=False):
        if a != b:
            break
        length += 1
    return max(1, min(length, len(query_ids)))


def vrm_forward(model, input_ids: torch.Tensor, attention_mask: torch.Tensor, prompt_lengths: torch.Tensor):
    """[`VRMHeadOutput`] of right-padded rows: the weight head reads each row's last prompt token
    (`prompt_lengths - 1`), the feature head its last token."""
    backbone, head = backbone_and_head(model)
    hidden = backbone(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).last_hidden_state
    rows = torch.arange(len(input_ids), device=input_ids.device)
    last = attention_mask.sum(-1).long() - 1
    prompt_end = torch.minimum((prompt_lengths.to(last.device).long() - 1).clamp_min(0), last)
    return head(hidden[rows, prompt_end], hidden[rows, last])


__all__ = [
    "VRMHead",
    "VRMHeadOutput",
    "VRMSettings",
    "attach_vrm_head",
    "encode_prompt",
    "load_vrm_model",
    "prompt_length",
    "vrm_forward",
    "vrm_settings_of",
]
