# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""The prefix cache and the packed forward shared by every method's scorer and trainer.

A prefix (demonstrations, a prompt) is encoded once into a key-value cache ([`encode_prefix`],
[`extend_prefix_cache`], [`expand_prefix_cache`]) and its suffixes classified on top of it ([`classify_suffixes`]);
or several rows that share tokens are packed into one sequence whose tree attention mask keeps each row to itself
([`classify_packed_suffixes`], [`packed_pair_logits`]). [`prefix_sharing_problem`] says when a backbone's attention
cannot be masked exactly this way.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import torch

from .._trl_compat import cache_argument, layer_types_and_windows, pad
from .loading import backbone_and_head


PACKABLE_LAYER_TYPES = ("full_attention", "sliding_attention", "chunked_attention")
"""Attention layer types whose masks the prefix-sharing paths build exactly (per layer type, in absolute positions)."""

MASKED_ATTENTION = ("eager", "sdpa")
"""Attention implementations that take a ready 4D mask, which the packed paths need."""


def attention_layout(model) -> dict[str, int | None]:
    """`{layer type: window}` of a model's decoder layers, as transformers' caches read them from the config: the
    window of `sliding_attention` layers, the chunk size of `chunked_attention` layers, `None` for the others."""
    backbone, _ = backbone_and_head(model)
    layer_types, layer_kwargs = layer_types_and_windows(backbone.config.get_text_config(decoder=True))
    layout: dict[str, int | None] = {}
    for layer_type, kwargs in zip(layer_types, layer_kwargs, strict=True):
        window = kwargs.get("sliding_window")
        if layout.setdefault(layer_type, window) != window:
            layout[layer_type] = -1  # several windows under one layer type: no one mask per type fits
    return layout


def prefix_sharing_problem(model) -> str | None:
    """Why the prefix-sharing paths (a kept prefix cache, packed rows) cannot be exact for `model`, or `None` when
    they are: they need a causal decoder whose attention takes a 4D mask (eager or sdpa) and whose layers are full,
    sliding-window or chunked attention, one window per layer type."""
    try:
        backbone, _ = backbone_and_head(model)
    except TypeError as error:
        return str(error)
    config = backbone.config.get_text_config(decoder=True)
    implementation = getattr(config, "_attn_implementation", None) or "eager"
    if implementation not in MASKED_ATTENTION:
        return f"the {implementation!r} attention implementation takes no 4D attention mask (use eager or sdpa)"
    if not getattr(config, "is_causal", True) or getattr(config, "use_bidirectional_attention", False):
        return "its attention is bidirectional"
    layout = attention_layout(model)
    other = sorted(set(layout) - set(PACKABLE_LAYER_TYPES))
    if other:
        return f"its layers of type {other} are not full, sliding-window or chunked attention"
    if any(window == -1 for window in layout.values()):
        return "its layers of one type use different windows"
    return None


def tree_attention_mask(model, allowed: torch.Tensor, query_positions: torch.Tensor, key_positions: torch.Tensor):
    """The additive 4D attention mask(s) of a packed sequence: query `i` sees key `j` where `allowed[i, j]` (the
    rows' tree) and, in sliding-window and chunked layers, where transformers' window or chunk overlay allows it for
    their absolute positions `query_positions[i]`, `key_positions[j]`. One mask when every layer is of one type, else
    `{layer type: mask}` (the per-layer-type masks that transformers' decoders accept in place of building theirs).
    In the model's dtype and on its device."""
    from transformers.masking_utils import chunked_overlay, sliding_window_overlay

    backbone, _ = backbone_and_head(model)
    dtype = next(p for p in backbone.parameters() if p.is_floating_point()).dtype
    query, key = query_positions[:, None], key_positions[None, :]
    masks = {}
    for layer_type, window in attention_layout(model).items():
        keep = allowed
        if layer_type == "sliding_attention":
            keep = keep & sliding_window_overlay(window)(0, 0, query, key)
        elif layer_type == "chunked_attention":
            keep = keep & chunked_overlay(window, torch.zeros(1, dtype=torch.long, device=allowed.device))(
                0, 0, query, key
            )
        mask = torch.zeros(keep.shape, dtype=dtype, device=allowed.device).masked_fill(~keep, torch.finfo(dtype).min)
        masks[layer_type] = mask[None, None]
    return next(iter(masks.values())) if len(masks) == 1 else masks


def _cache_kwargs(backbone, cache) -> dict[str, Any]:
    """The key-value cache keyword of `backbone.forward` (its name in the installed transformers) holding `cache`."""
    name = cache_argument(backbone)
    if name is None:
        raise TypeError(f"{type(backbone).__name__}.forward takes no key-value cache")
    return {name: cache, "use_cache": cache is not None}


def encode_prefix(model, prefix_ids: torch.Tensor):
    """Key-value cache of one token sequence `prefix_ids` (1-D) under the model's backbone (gradients kept).

    Every layer keeps every key and value (a transformers `DynamicCache` of full layers, even for sliding-window
    layers, which a cache built from the config would trim to their window): the rows read after it are masked per
    layer type, so they see exactly what the full sequence would."""
    from transformers.cache_utils import DynamicCache

    backbone, _ = backbone_and_head(model)
    cache = DynamicCache()
    backbone(input_ids=prefix_ids.reshape(1, -1), **_cache_kwargs(backbone, cache))
    return cache


def extend_prefix_cache(model, cache, ids: torch.Tensor):
    """A new one-row key-value cache of `prefix + ids`, from the cache of `prefix` (left unchanged; `None` for an empty
    prefix) and the 1-D token ids `ids` that follow it."""
    backbone, _ = backbone_and_head(model)
    if cache is None:
        return encode_prefix(model, ids)
    try:
        cache = expand_prefix_cache(cache, 1)
    except TypeError:
        cache = copy.deepcopy(cache)
    backbone(input_ids=ids.reshape(1, -1), **_cache_kwargs(backbone, cache))
    return cache


def cache_nbytes(cache) -> int:
    """Bytes held by the key and value tensors of a key-value cache."""
    total = 0
    for layer in getattr(cache, "layers", ()):
        for tensor in (getattr(layer, "keys", None), getattr(layer, "values", None)):
            if isinstance(tensor, torch.Tensor):
                total += tensor.numel() * tensor.element_size()
    return total


def expand_prefix_cache(cache, rows: int):
    """A new key-value cache that holds the one-row `cache` for each of `rows` rows, as broadcast views (no copy).

    The cache passed in is left as it is: a forward pass appends to the new cache by concatenation, which makes new
    tensors, so one encoded prefix serves any number of batches and calls. Only plain dynamic layers can be viewed
    this way; any other layer type raises a `TypeError` (callers then copy the cache instead).

    Example:

    ```python
    >>> cache = encode_prefix(model, prefix_ids)  # doctest: +SKIP
    >>> batch_cache = expand_prefix_cache(cache, rows=8)  # doctest: +SKIP
    ```
    """
    from transformers.cache_utils import DynamicLayer

    expanded = copy.copy(cache)
    expanded.layers = []
    for layer in cache.layers:
        if type(layer) is not DynamicLayer:
            raise TypeError(f"cannot share a {type(layer).__name__} across rows without copying it")
        layer = copy.copy(layer)
        if layer.is_initialized and layer.keys.numel():
            if layer.keys.shape[0] != 1:
                raise ValueError(f"expected a one-row prefix cache, got {layer.keys.shape[0]} rows")
            layer.keys = layer.keys.expand(rows, *layer.keys.shape[1:])
            layer.values = layer.values.expand(rows, *layer.values.shape[1:])
        expanded.layers.append(layer)
    return expanded


def classify_suffixes(
    model, input_ids: torch.Tensor, attention_mask: torch.Tensor, pad_token_id: int, prefix_cache=None
) -> torch.Tensor:
    """Classifier outputs `(rows, num_labels)` of right-padded token rows, each read after the one prefix held in
    `prefix_cache` (from [`encode_prefix`]; shared by every row and left unchanged) or alone when it is `None`.

    The head reads the rightmost token that is not the pad token (pad may equal eos), exactly as transformers'
    sequence classifiers pool, so `prefix + row` scores as the full sequence would.
    """
    backbone, head = backbone_and_head(model)
    if prefix_cache is not None:
        prefix_length = prefix_cache.get_seq_length()
        try:
            prefix_cache = expand_prefix_cache(prefix_cache, len(input_ids))
        except TypeError:  # another cache layout: repeat a copy of it
            prefix_cache = copy.deepcopy(prefix_cache)
            prefix_cache.batch_repeat_interleave(len(input_ids))
        attention_mask = torch.cat([attention_mask.new_ones(len(input_ids), prefix_length), attention_mask], dim=1)
    cache_kwargs = _cache_kwargs(backbone, prefix_cache) if prefix_cache is not None else {"use_cache": False}
    hidden = backbone(input_ids=input_ids, attention_mask=attention_mask, **cache_kwargs).last_hidden_state
    positions = torch.arange(input_ids.shape[1], device=input_ids.device, dtype=torch.int32)
    last = ((input_ids != pad_token_id).int() * positions).argmax(-1)
    return head(hidden[torch.arange(len(input_ids), device=input_ids.device), last])


def classify_packed_suffixes(model, rows: Sequence[Sequence[int]], pad_token_id: int, prefix_cache=None):
    """Classifier outputs `(len(rows), num_labels)` of token rows that all follow the one prefix of `prefix_cache`
    (left unchanged; `None` for no prefix), run as one packed sequence: each row attends to the prefix and to itself
    only, with position ids that continue from the prefix, so each scores as `prefix + row` alone would.

    Against batching the rows (which repeats the prefix's keys and values once per row and pads rows to each other),
    the prefix is read once and nothing is padded. Each row is pooled at its rightmost token that is not the pad
    token, as transformers' sequence classifiers pool.

    Example:

    ```python
    >>> logits = classify_packed_suffixes(model, [[5, 6, 7], [8, 9]], pad_token_id=0, prefix_cache=cache)  # doctest: +SKIP
    ```
    """
    backbone, head = backbone_and_head(model)
    device = next(backbone.parameters()).device
    prefix_length = prefix_cache.get_seq_length() if prefix_cache is not None else 0
    lengths = torch.tensor([len(row) for row in rows], device=device)
    ids = torch.cat([torch.as_tensor(row, dtype=torch.long, device=device) for row in rows])
    segment = torch.repeat_interleave(torch.arange(len(rows), device=device), lengths)
    starts = torch.cumsum(lengths, 0) - lengths
    local = torch.arange(len(ids), device=device) - starts[segment]
    allowed = (segment[:, None] == segment[None, :]) & (local[None, :] <= local[:, None])
    allowed = torch.cat([allowed.new_ones(len(ids), prefix_length), allowed], dim=1)
    positions = local + prefix_length
    key_positions = torch.cat([torch.arange(prefix_length, device=device), positions])
    mask = tree_attention_mask(model, allowed, positions, key_positions)
    cache_kwargs = {"use_cache": False}
    if prefix_cache is not None:
        try:
            cache = expand_prefix_cache(prefix_cache, 1)
        except TypeError:
            cache = copy.deepcopy(prefix_cache)
        cache_kwargs = _cache_kwargs(backbone, cache)
    hidden = backbone(
        input_ids=ids[None], attention_mask=mask, position_ids=positions[None], **cache_kwargs
    ).last_hidden_state[0]
    last = torch.stack(
        [_last_real(ids[start : start + n], pad_token_id) for start, n in zip(starts, lengths, strict=True)]
    )
    return head(hidden[starts + last])


def packed_pair_logits(
    model, chosen_ids: torch.Tensor, rejected_ids: torch.Tensor, prefix_length: int, pad_token_id: int
):
    """Classifier outputs `(2, num_labels)` of the two sides of a pair that share their first `prefix_length` tokens,
    from one forward pass over `prefix + chosen suffix + rejected suffix` (1-D unpadded rows in, no key-value cache).

    The rejected suffix attends to the prefix and to itself, never to the chosen suffix, and its position ids continue
    from the prefix: each side is computed exactly as its full sequence alone, while the prefix is encoded once. With
    no cache passed between passes, this works under gradient checkpointing. Each side is pooled at its rightmost
    token that is not the pad token, as transformers' sequence classifiers pool.

    Example:

    ```python
    >>> logits = packed_pair_logits(model, chosen, rejected, prefix_length=120, pad_token_id=0)  # doctest: +SKIP
    ```
    """
    backbone, head = backbone_and_head(model)
    device, n_chosen = chosen_ids.device, len(chosen_ids)
    ids = torch.cat([chosen_ids, rejected_ids[prefix_length:]])
    total = len(ids)
    positions = torch.cat(
        [torch.arange(n_chosen, device=device), torch.arange(prefix_length, len(rejected_ids), device=device)]
    )
    query, key = torch.arange(total, device=device)[:, None], torch.arange(total, device=device)[None, :]
    allowed = key <= query
    allowed &= ~((query >= n_chosen) & (key >= prefix_length) & (key < n_chosen))  # rejected never sees chosen
    mask = tree_attention_mask(model, allowed, positions, positions)
    hidden = backbone(
        input_ids=ids[None], attention_mask=mask, position_ids=positions[None], use_cache=False
    ).last_hidden_state[0]
    rejected_index = torch.cat(
        [torch.arange(prefix_length, device=device), torch.arange(n_chosen, total, device=device)]
    )
    last = [_last_real(chosen_ids, pad_token_id), rejected_index[_last_real(rejected_ids, pad_token_id)]]
    return head(hidden[torch.stack([torch.as_tensor(i, device=device) for i in last])])


def _last_real(ids: torch.Tensor, pad_token_id: int) -> torch.Tensor:
    """Index of the rightmost token of a 1-D row that is not the pad token (0 if there is none)."""
    positions = torch.arange(len(ids), device=ids.device, dtype=torch.int32)
    return ((ids != pad_token_id).int() * positions).argmax(-1)


def pad_right(
    rows: Sequence[Sequence[int] | torch.Tensor], pad_token_id: int, device: torch.device | str | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded ids and attention mask of token rows, as TRL's reward collator pads them."""
    rows = [torch.as_tensor(row, dtype=torch.long) for row in rows]
    ids = pad(rows, padding_value=pad_token_id, padding_side="right")
    mask = pad([torch.ones_like(row) for row in rows], padding_value=0, padding_side="right")
    return ids.to(device) if device is not None else ids, mask.to(device) if device is not None else mask
