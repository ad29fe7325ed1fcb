# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""Random-initialized models built from a config with the embedded tokenizer, for tests and throughput benchmarks.

Tiny ones keep the test suite fast; realistic sizes (e.g. `hidden_size=2048, num_hidden_layers=24`) serve benchmarks
on machines the 135M embedded model's weights cannot travel to.

Example:

```python
>>> from trl_icrm.utils.testing import save_random_models
>>> folders = save_random_models("tiny-models")  # {"causal_lm": ..., "sequence_classifier": ...}
```
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM, LlamaForSequenceClassification

from ..utils.default_model import default_model_path


TINY_ARCHITECTURE = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 4096,
}


def random_llama_config(tokenizer, **overrides) -> LlamaConfig:
    """A Llama config sized by `overrides` (tiny by default) whose vocabulary and special tokens match `tokenizer`."""
    architecture = {**TINY_ARCHITECTURE, **overrides}
    return LlamaConfig(
        vocab_size=len(tokenizer),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
        **architecture,
    )


def save_random_models(
    output_dir: str | os.PathLike,
    tokenizer_name_or_path: str | None = None,
    seed: int = 0,
    num_labels: int = 2,
    **architecture,
) -> dict[str, str]:
    """Build a random-initialized causal LM and sequence classifier and save each, with the tokenizer, to a folder.

    Args:
        output_dir: Folder that receives `causal_lm/` and `sequence_classifier/`.
        tokenizer_name_or_path: Tokenizer to build around (default: the embedded model's, with its chat template).
        seed: Seed of the random initialization.
        num_labels: Outputs of the sequence classifier (2 for an ICRM reward model: reward and confidence heads).
        **architecture: Overrides of [`TINY_ARCHITECTURE`].

    Returns:
        `{"causal_lm": path, "sequence_classifier": path}`.
    """
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_name_or_path or default_model_path())
    config = random_llama_config(tokenizer, **architecture)
    folders = {}
    for name, model_class, extra in (
        ("causal_lm", LlamaForCausalLM, {}),
        ("sequence_classifier", LlamaForSequenceClassification, {"num_labels": num_labels}),
    ):
        torch.manual_seed(seed)
        model = model_class(LlamaConfig.from_dict({**config.to_dict(), **extra}))
        folder = Path(output_dir) / name
        model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
        folders[name] = str(folder)
    return folders


_WORDS = [
    "apple",
    "river",
    "stone",
    "cloud",
    "green",
    "quick",
    "seven",
    "table",
    "music",
    "paper",
    "light",
    "ocean",
    "north",
    "tiger",
    "lemon",
    "silver",
]


def conflicting_pairs(n_per_group: int, seed: int = 0):
    """A synthetic steerable task: two groups with opposite preferences over the same kind of pairs.

    Group `"A"` prefers the response `" yes"`, group `"B"` the response `" no"`, to random three-word prompts. Without
    demonstrations no model can be right on both groups; with a few demonstrations of the group it can.
    """
    import random

    from datasets import Dataset

    rng = random.Random(seed)
    rows = []
    for group, (good, bad) in (("A", ("yes", "no")), ("B", ("no", "yes"))):
        for _ in range(n_per_group):
            prompt = " ".join(rng.sample(_WORDS, 3)) + "?"
            rows.append({"prompt": prompt, "chosen": " " + good, "rejected": " " + bad, "group": group})
    return Dataset.from_list(rows)
