# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""The two-headed ICRM reward model: loading, the settings saved in its config, and its heads.

An ICRM model is any backbone that `AutoModelForSequenceClassification` supports, with `num_labels=2`: output 0 is the
preference-mean head (the BT reward r of the response given the demonstrations), output 1 the confidence head (its
softplus plus eps is the evidence kappa). The ICRM settings (prior, `kl_coef`, eps, demonstration template) live in
`config.icrm`, so `from_pretrained` on a saved folder restores a model that scores as it did in training. A PEFT
adapter folder carries the same settings in its saved base config.

Example:

```python
>>> from trl_icrm.icrm.modeling import load_icrm_model
>>> model, tokenizer = load_icrm_model("embedded:SmolLM2-135M-Instruct")  # a fresh (untrained) ICRM head
>>> model.config.num_labels, sorted(model.config.icrm)
(2, ['eps', 'kl_coef', 'prior_alpha', 'prior_beta', 'template'])
```
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from transformers import PreTrainedModel

from ..demonstrations import DemonstrationTemplate
from ..models.loading import describe_model_kind, load_sequence_classifier_with_head, saved_settings


ICRM_LABELS = {0: "reward", 1: "confidence"}


@dataclass
class ICRMSettings:
    """The ICRM settings a model is trained and scored with, stored in `config.icrm`."""

    prior_alpha: float = 1.0
    prior_beta: float = 1.0
    kl_coef: float = 0.1
    eps: float = 1e-3
    template: DemonstrationTemplate = field(default_factory=DemonstrationTemplate)
    max_length: int | None = field(default=None, compare=False)
    """The `max_length` the model was trained with (demonstrations + query); scorers default to it. It does not change
    what the model computes, so models with other values compare equal."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "prior_alpha": self.prior_alpha,
            "prior_beta": self.prior_beta,
            "kl_coef": self.kl_coef,
            "eps": self.eps,
            "template": self.template.to_dict(),
            "max_length": self.max_length,
        }

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> ICRMSettings:
        if not isinstance(values, Mapping):
            raise ValueError(
                f"The `icrm` settings of this model config are not an object of settings (got "
                f"{type(values).__name__} {str(values)[:60]}); the saved model is damaged."
            )
        values = dict(values)
        template = DemonstrationTemplate.from_dict(values.pop("template", None))
        return cls(template=template, **values)

    @classmethod
    def from_config(cls, config) -> ICRMSettings:
        """Settings saved in a model config; raises if the config is not an ICRM model's."""
        values = getattr(config, "icrm", None)
        if values is None:
            raise ValueError(
                f"This model config has no `icrm` settings: it is {describe_model_kind(config)}, not an ICRM reward "
                "model (train one with `ICRMRewardTrainer`, or use `load_icrm_model(..., settings=ICRMSettings())` to "
                "start one; `trl_icrm.load_reward` scores any saved kind)."
            )
        return cls.from_dict(values)

    def save_to_config(self, config) -> None:
        config.icrm = self.to_dict()


def load_icrm_model(
    model_name_or_path: str | os.PathLike,
    settings: ICRMSettings | None = None,
    tokenizer_name_or_path: str | None = None,
    trust_remote_code: bool = False,
    allow_new_head: bool = True,
    **model_init_kwargs,
) -> tuple[PreTrainedModel, Any]:
    """Load an ICRM reward model and its tokenizer.

    Args:
        model_name_or_path: A trained ICRM model folder, a PEFT adapter folder of one, a hub id, or a causal-LM
            backbone (or [`DEFAULT_MODEL`]) to start a new ICRM model from (its 2-output head is then new).
        settings: ICRM settings for a new model. For a saved ICRM model they come from its config; passing
            different ones is an error (the model would score differently from how it was trained).
        tokenizer_name_or_path: Tokenizer location if not the model's.
        trust_remote_code: Forwarded to transformers (off by default).
        allow_new_head: Whether a model without saved ICRM settings may be loaded with a new (random) head; scorers
            pass `False`.
        **model_init_kwargs: Forwarded to `AutoModelForSequenceClassification.from_pretrained` (e.g. `dtype`).

    Returns:
        `(model, tokenizer)`; the model is in eval mode.
    """

    def configure(config) -> None:
        chosen = _settings_for(config, settings, model_name_or_path, allow_new_head)
        chosen.save_to_config(config)
        config.id2label, config.label2id = dict(ICRM_LABELS), {v: k for k, v in ICRM_LABELS.items()}

    # With an adapter, the base checkpoint has no ICRM head: transformers reports it "newly initialized", but the
    # adapter restores it right after, so that report is silenced (a new head on a plain backbone is still reported).
    return load_sequence_classifier_with_head(
        model_name_or_path, configure, tokenizer_name_or_path, trust_remote_code, **model_init_kwargs
    )


def _settings_for(config, settings: ICRMSettings | None, name, allow_new_head: bool) -> ICRMSettings:
    """The saved settings of an ICRM config (refusing different ones), or `settings` (or the defaults) for a new head."""
    if getattr(config, "vrm", None) is not None:
        raise ValueError(
            f"{name} is {describe_model_kind(config)}, not an ICRM reward model; it cannot be loaded or scored as one."
        )
    saved = saved_settings(config, settings, ICRMSettings, "ICRM", name)
    if saved is not None:
        return saved
    if not allow_new_head:
        raise ValueError(
            f"{name} is not a trained ICRM model (its config has no `icrm` settings); scoring with it would use a new, "
            "random head. Train one with `ICRMRewardTrainer`."
        )
    return settings or ICRMSettings()


def icrm_settings_of(model) -> ICRMSettings:
    """The ICRM settings of a (possibly PEFT-wrapped) model."""
    return ICRMSettings.from_config(model.config)


def split_heads(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Reward r and confidence logit c from the `(..., 2)` output of an ICRM model."""
    if logits.shape[-1] != 2:
        raise ValueError(f"An ICRM model has 2 outputs (reward, confidence); got {logits.shape[-1]}.")
    return logits[..., 0], logits[..., 1]
