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
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    LlamaConfig,
)

from ..utils.default_model import default_model_path


TINY_ARCHITECTURE = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 4096,
}


ARCHITECTURES = {
    "llama": ("llama", {}),
    "llama_tied": ("llama", {"tie_word_embeddings": True}),
    "qwen2": ("qwen2", {"use_sliding_window": False}),
    "qwen2_sliding": ("qwen2", {"use_sliding_window": True, "sliding_window": 8, "max_window_layers": 1}),
    "qwen3": ("qwen3", {"head_dim": 8, "tie_word_embeddings": True}),
    "mistral": ("mistral", {"head_dim": 8, "sliding_window": 8}),
    "gemma": ("gemma", {"head_dim": 8}),
    "gemma2": (
        "gemma2",
        {"head_dim": 8, "sliding_window": 8, "attn_logit_softcapping": 5.0, "final_logit_softcapping": 3.0},
    ),
    "gemma3": (
        "gemma3_text",
        {"head_dim": 8, "sliding_window": 8, "layer_types": ["sliding_attention", "full_attention"]},
    ),
    "phi3": ("phi3", {"sliding_window": None}),
    "gpt_neox": ("gpt_neox", {"num_key_value_heads": None}),
    "gpt2": (
        "gpt2",
        {"num_key_value_heads": None, "n_positions": 1024, "resid_pdrop": 0.0, "embd_pdrop": 0.0, "attn_pdrop": 0.0},
    ),
}
"""Tiny test architectures: `{name: (transformers model type, config overrides)}`, covering full, sliding-window (on
every layer, or per layer type), soft-capped, tied-embedding, GQA and absolute-position attention layouts. The
sliding windows (8 tokens) are shorter than the test rows, so a path that ignores them shows."""


def random_llama_config(tokenizer, **overrides) -> LlamaConfig:
    """A Llama config sized by `overrides` (tiny by default) whose vocabulary and special tokens match `tokenizer`."""
    return random_config(tokenizer, "llama", tie_word_embeddings=True, **overrides)


def random_config(tokenizer, architecture: str = "llama", **overrides):
    """A transformers config of `architecture` (a key of [`ARCHITECTURES`] or a model type), sized by `overrides`
    (tiny by default), whose vocabulary and special tokens match `tokenizer`.

    Example:

    ```python
    >>> config = random_config(tokenizer, "gemma2", num_labels=2)  # doctest: +SKIP
    ```
    """
    model_type, defaults = ARCHITECTURES.get(architecture, (architecture, {}))
    values = {**TINY_ARCHITECTURE, **defaults, **overrides}
    values = {k: v for k, v in values.items() if v is not None or k == "sliding_window"}
    return AutoConfig.for_model(
        model_type,
        vocab_size=len(tokenizer),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **values,
    )


def save_random_models(
    output_dir: str | os.PathLike,
    tokenizer_name_or_path: str | None = None,
    seed: int = 0,
    num_labels: int = 2,
    architecture: str = "llama_tied",
    **overrides,
) -> dict[str, str]:
    """Build a random-initialized causal LM and sequence classifier and save each, with the tokenizer, to a folder.

    Args:
        output_dir: Folder that receives `causal_lm/` and `sequence_classifier/`.
        tokenizer_name_or_path: Tokenizer to build around (default: the embedded model's, with its chat template).
        seed: Seed of the random initialization.
        num_labels: Outputs of the sequence classifier (2 for an ICRM reward model: reward and confidence heads).
        architecture: A key of [`ARCHITECTURES`] (default: a Llama with tied embeddings, as the embedded model).
        **overrides: Overrides of [`TINY_ARCHITECTURE`] and the architecture's settings.

    Returns:
        `{"causal_lm": path, "sequence_classifier": path}`.
    """
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_name_or_path or default_model_path())
    config = random_config(tokenizer, architecture, **overrides)
    folders = {}
    for name, auto_class, extra in (
        ("causal_lm", AutoModelForCausalLM, {}),
        ("sequence_classifier", AutoModelForSequenceClassification, {"num_labels": num_labels}),
    ):
        torch.manual_seed(seed)
        model = auto_class.from_config(type(config).from_dict({**config.to_dict(), **extra}))
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
