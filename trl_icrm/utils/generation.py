# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""Batched greedy generation from plain or chat prompts, shared by the recipes and the benchmarks.

Example:

```python
>>> from trl_icrm.utils.generation import generate_greedy
>>> generate_greedy(model, tokenizer, [[{"role": "user", "content": "What is 2 + 2?"}]], max_new_tokens=8)  # doctest: +SKIP
[[{'role': 'assistant', 'content': '2 + 2 = 4.'}]]
```
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from transformers import GenerationConfig


def _render_prompts(tokenizer, prompts: Sequence[Any]) -> tuple[list[str], bool]:
    conversational = not isinstance(prompts[0], str)
    if not conversational:
        return list(prompts), False
    return [tokenizer.apply_chat_template(list(p), add_generation_prompt=True, tokenize=False) for p in prompts], True


def encode_prompts(tokenizer, texts: Sequence[str], conversational: bool, device):
    """Left-padded prompt ids for generation; chat-rendered texts already carry their special tokens."""
    return tokenizer(
        list(texts), padding=True, padding_side="left", add_special_tokens=not conversational, return_tensors="pt"
    ).to(device)


@torch.no_grad()
def generate_greedy(
    model, tokenizer, prompts: Sequence[Any], max_new_tokens: int = 128, batch_size: int = 16
) -> list[Any]:
    """Greedy completions of `prompts` (strings, or chat message lists rendered with the chat template): strings, or
    `[{"role": "assistant", "content": ...}]` for chat prompts."""
    if not prompts:
        return []
    texts, conversational = _render_prompts(tokenizer, prompts)
    pad_token_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    eos_token_id = getattr(model.generation_config, "eos_token_id", None) or tokenizer.eos_token_id
    config = GenerationConfig(
        do_sample=False, max_new_tokens=max_new_tokens, pad_token_id=pad_token_id, eos_token_id=eos_token_id
    )
    device = next(model.parameters()).device
    completions: list[Any] = []
    for start in range(0, len(texts), batch_size):
        batch = encode_prompts(tokenizer, texts[start : start + batch_size], conversational, device)
        output = model.generate(**batch, generation_config=config)
        for ids in output[:, batch["input_ids"].shape[1] :]:
            text = tokenizer.decode(ids, skip_special_tokens=True)
            completions.append([{"role": "assistant", "content": text}] if conversational else text)
    return completions


__all__ = ["encode_prompts", "generate_greedy"]
