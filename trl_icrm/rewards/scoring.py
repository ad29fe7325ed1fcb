# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""Batched scoring of token sequences with a sequence classifier, shared by the reward models that run one.

[`SequenceScorer`] scores `prefix + query` token rows; rows that share a prefix (the demonstrations of an ICRM
context) are scored against one key-value cache of it. [`load_for_scoring`] loads a scoring model whole on every
process, even under DeepSpeed ZeRO-3 (see `trl_icrm.utils.distributed`).
"""

from __future__ import annotations

import copy
import logging
import os
from collections.abc import Callable, Sequence
from typing import Any

import torch

from ..demonstrations import EncodedQuery
from ..modeling import classify_suffixes, encode_prefix, pad_right, prepare_tokenizer, unwrap_peft
from ..utils.distributed import zero3_init_disabled


logger = logging.getLogger(__name__)


def load_for_scoring(
    model: str | os.PathLike | Any, tokenizer: Any, load: Callable[[str | os.PathLike], tuple[Any, Any]]
) -> tuple[Any, Any]:
    """`(model, tokenizer)` in eval mode with a pad token: `load(path)` for a path (whole, even under ZeRO-3), or a
    loaded model with the `tokenizer` that must come with it."""
    if isinstance(model, (str, bytes)) or hasattr(model, "__fspath__"):
        with zero3_init_disabled():  # a whole copy per process, even while a ZeRO-3 config is active
            model, loaded_tokenizer = load(model)
        tokenizer = tokenizer or loaded_tokenizer
    elif tokenizer is None:
        raise ValueError("Pass the tokenizer along with a loaded model.")
    prepare_tokenizer(tokenizer, unwrap_peft(model))
    return model.eval(), tokenizer


def model_device(model) -> torch.device:
    return next(model.parameters()).device


class SequenceScorer:
    """Batched scoring of token sequences with a sequence classifier, optionally reusing a shared prefix's KV cache.

    The cached path encodes each distinct prefix once with the backbone, then runs only the suffixes against a copy
    of its key-value cache, pools the last non-pad token as the classifier does and applies its head. Backbones that
    cannot take a cache fall back to the full-sequence path with a one-time warning.
    """

    def __init__(self, model, pad_token_id: int, batch_size: int = 16, use_prefix_cache: bool = True):
        self.model = model
        self.pad_token_id = pad_token_id
        self.batch_size = batch_size
        self.use_prefix_cache = use_prefix_cache
        self._cache_failed = False

    def _forward_full(self, rows: list[list[int]]) -> torch.Tensor:
        ids, mask = pad_right(rows, self.pad_token_id, model_device(self.model))
        return self.model(input_ids=ids, attention_mask=mask, use_cache=False).logits.float()

    def _forward_cached(self, prefix: list[int], suffixes: list[list[int]]) -> torch.Tensor:
        device = model_device(self.model)
        cache = encode_prefix(self.model, torch.tensor(prefix, device=device))
        out = []
        for start in range(0, len(suffixes), self.batch_size):
            ids, mask = pad_right(suffixes[start : start + self.batch_size], self.pad_token_id, device)
            out.append(classify_suffixes(self.model, ids, mask, self.pad_token_id, copy.deepcopy(cache)).float())
        return torch.cat(out)

    @torch.inference_mode()
    def score(self, encoded: Sequence[EncodedQuery]) -> torch.Tensor:
        """Classifier outputs `(len(encoded), num_labels)` for the sequences `prefix_ids + query_ids`."""
        if not encoded:
            return torch.zeros(0, unwrap_peft(self.model).config.num_labels)
        logits: list[torch.Tensor | None] = [None] * len(encoded)
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, item in enumerate(encoded):
            groups.setdefault(tuple(item.prefix_ids), []).append(i)
        naive = []
        for prefix, members in groups.items():
            if prefix and self.use_prefix_cache and not self._cache_failed:
                try:
                    scored = self._forward_cached(list(prefix), [encoded[i].query_ids for i in members])
                except (TypeError, AttributeError, NotImplementedError, ValueError) as error:
                    self._cache_failed = True
                    logger.warning(
                        "Shared-prefix caching is not available for this model (%s); scoring full sequences.", error
                    )
                else:
                    for i, row in zip(members, scored, strict=True):
                        logits[i] = row
                    continue
            naive.extend(members)
        for start in range(0, len(naive), self.batch_size):
            members = naive[start : start + self.batch_size]
            scored = self._forward_full([encoded[i].input_ids for i in members])
            for i, row in zip(members, scored, strict=True):
                logits[i] = row
        return torch.stack(logits)  # type: ignore[arg-type]


__all__ = ["SequenceScorer", "load_for_scoring", "model_device"]
