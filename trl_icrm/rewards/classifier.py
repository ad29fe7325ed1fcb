# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""[`SequenceClassifierReward`]: a conventional Bradley-Terry reward model (e.g. one trained by `trl.RewardTrainer`)
on the reward-posterior interface: its score, with no variance.

Example:

```python
from trl_icrm.rewards import SequenceClassifierReward

reward = SequenceClassifierReward("outputs/math-bt", name="bt")
reward(prompts=["What is 2 + 2?"], completions=["4"])  # one float per completion
```
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any

import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from ..demonstrations import DemonstrationRenderer, EncodedQuery
from ..models import describe_model_kind, read_model_config, unwrap_peft
from ..utils.default_model import resolve_model_name_or_path
from .base import RewardModel, RewardPosterior
from .scoring import SequenceScorer, load_for_scoring


def load_sequence_classifier(model_name_or_path, tokenizer=None, trust_remote_code: bool = False) -> tuple[Any, Any]:
    """`(model, tokenizer)` of a sequence classifier folder, PEFT adapter folder or hub id (fp32, safetensors); the
    tokenizer is loaded from the same place unless given."""
    path = resolve_model_name_or_path(model_name_or_path)
    config = read_model_config(path, trust_remote_code)
    if getattr(config, "num_labels", None) != 1 and any(a.endswith("ForCausalLM") for a in config.architectures or []):
        raise ValueError(
            f"{model_name_or_path} is a causal language model, not a reward model: a reward model is a sequence "
            "classifier with one output (train one with `trl.RewardTrainer`, or `trl-icrm train --method bt`)."
        )
    if getattr(config, "vrm", None) is not None or getattr(config, "icrm", None) is not None:
        raise ValueError(
            f"{model_name_or_path} is {describe_model_kind(config)}; a conventional reward model has one output."
        )
    tokenizer = tokenizer or AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    model = AutoModelForSequenceClassification.from_pretrained(
        path, dtype=torch.float32, use_safetensors=True, trust_remote_code=trust_remote_code
    )
    return model, tokenizer


class SequenceClassifierReward(RewardModel):
    """
    A conventional (Bradley-Terry) reward model as a reward posterior and a TRL reward function: any
    `AutoModelForSequenceClassification` with one output, e.g. one trained by `trl.RewardTrainer` (full folder or PEFT
    adapter folder). Its posterior is its score, with no variance (`scale="score"`).

    Completions are rendered as `trl.RewardTrainer` renders them (chat template for conversational data,
    `prompt + completion + eos` otherwise), so the model scores what it was trained on.

    Args:
        model: Folder, hub id, PEFT adapter folder or loaded model (then pass `tokenizer`).
        tokenizer: The model's tokenizer when `model` is loaded.
        batch_size: Sequences per forward pass.
        use_prefix_cache: Encode a prompt shared by several completions once (at least 16 tokens of it) and run only
            the rest of each sequence after it; `False` scores every full sequence. The scores are the same.
        name: The name TRL logs the reward under (default `"bt_reward"`).
        penalty: `None` or `"mean"` (both the score: a BT model reports no variance).
        penalty_coef: k of the penalty (unused by `None` and `"mean"`; taken like every reward model's).
    """

    scale = "score"
    has_uncertainty = False

    def __init__(
        self,
        model,
        tokenizer=None,
        *,
        batch_size: int = 16,
        use_prefix_cache: bool = True,
        name: str = "bt_reward",
        penalty: str | None = None,
        penalty_coef: float = 1.0,
        trust_remote_code: bool = False,
    ):
        super().__init__(penalty=penalty, penalty_coef=penalty_coef, name=name)
        load = partial(load_sequence_classifier, tokenizer=tokenizer, trust_remote_code=trust_remote_code)
        self.model, self.tokenizer = load_for_scoring(model, tokenizer, load)
        num_labels = unwrap_peft(self.model).config.num_labels
        if num_labels != 1:
            raise ValueError(
                f"A conventional reward model has one output; this one has {num_labels}. For an ICRM model use "
                "`ICRMReward`."
            )
        self.renderer = DemonstrationRenderer(self.tokenizer)
        self.scorer = SequenceScorer(
            self.model, self.tokenizer.pad_token_id, batch_size, use_prefix_cache, prefix_cache_bytes=0
        )

    def score(self, prompts: Sequence[Any], completions: Sequence[Any], **columns) -> RewardPosterior:
        """The score of every completion (`reward` and `mean`), without variance."""
        encoded = [
            EncodedQuery([], self.renderer.encode_query(prompt, completion), 0, 0)
            for prompt, completion in zip(prompts, completions, strict=True)
        ]
        scores = self.scorer.score(encoded)[:, 0].double().cpu().numpy() if encoded else []
        return RewardPosterior(scores, scores, None, self.scale)


__all__ = ["SequenceClassifierReward", "load_sequence_classifier"]
