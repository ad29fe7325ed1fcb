# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""Batched scoring of token sequences with a sequence classifier, shared by the reward models that run one.

[`SequenceScorer`] scores `prefix + query` token rows; rows that share a prefix (the demonstrations of an ICRM
context) are scored against one key-value cache of it. [`load_for_scoring`] loads a scoring model whole on every
process, even under DeepSpeed ZeRO-3 (see `trl_icrm.utils.distributed`); [`TrainedRewardModel`], the base of the
reward models of a trained method, loads its model, tokenizer and settings with it.
"""

from __future__ import annotations

import logging
import os
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from functools import partial
from typing import Any

import torch

from ..demonstrations import EncodedQuery
from ..models import (
    cache_nbytes,
    classify_packed_suffixes,
    encode_prefix,
    extend_prefix_cache,
    pad_right,
    prefix_sharing_problem,
    prepare_tokenizer,
    unwrap_peft,
)
from ..utils.distributed import zero3_init_disabled
from .base import RewardModel


logger = logging.getLogger(__name__)

DEFAULT_PREFIX_CACHE_BYTES = 2**30
"""Default limit of the key-value caches of demonstration prefixes kept across calls (1 GiB)."""

MIN_SHARED_QUERY_TOKENS = 16
"""Fewest leading query tokens (a prompt) that rows after the same demonstrations must share to be encoded once."""

MAX_PACKED_TOKENS = 2048
"""Most tokens of rows packed into one sequence after a shared prefix (bounds the attention mask's size)."""


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


class TrainedRewardModel(RewardModel):
    """Base class of the reward models of a trained trl-icrm method (ICRM, VRM): a model, its tokenizer and the
    settings it was trained with, loaded for scoring ([`load_for_scoring`]: whole, even under ZeRO-3). The methods are
    Bayesian: their rewards have a variance (`has_uncertainty`).

    A subclass names its method where it is declared: the loader `load_model` (called with `allow_new_head=False`, so
    that a model without trained settings is refused), `settings_of` (the settings of a loaded model) and the default
    `name`. Its own constructor arguments are keyword-only; it passes the ones below on to this constructor.

    Args:
        model: A trained model of the method: folder, hub id, PEFT adapter folder, or a loaded model (then pass
            `tokenizer`).
        tokenizer: The model's tokenizer when `model` is a loaded model.
        penalty, penalty_coef: See [`RewardModel`].
        name: The name TRL logs the reward under (default: the method's `default_name`).
        trust_remote_code: Whether a model loaded by path may run code from its repository (off by default).

    Example:

    ```python
    from trl_icrm.rewards.scoring import TrainedRewardModel
    from trl_icrm.vrm.modeling import load_vrm_model, vrm_settings_of


    class MyReward(TrainedRewardModel, load_model=load_vrm_model, settings_of=vrm_settings_of, default_name="mine"):
        scale = "score"

        def __init__(self, model, tokenizer=None, *, batch_size: int = 16, **common):
            super().__init__(model, tokenizer, **common)  # penalty, penalty_coef, name, trust_remote_code
            self.batch_size = batch_size

        def score(self, prompts, completions, **columns): ...  # a RewardPosterior from self.model and self.settings
    ```
    """

    has_uncertainty = True
    load_model: Callable[..., tuple[Any, Any]]
    settings_of: Callable[[Any], Any]
    default_name: str

    def __init_subclass__(
        cls,
        *,
        load_model: Callable[..., tuple[Any, Any]] | None = None,
        settings_of: Callable[[Any], Any] | None = None,
        default_name: str | None = None,
        **kwargs: Any,
    ):
        super().__init_subclass__(**kwargs)
        if load_model is not None:
            cls.load_model = staticmethod(load_model)
        if settings_of is not None:
            cls.settings_of = staticmethod(settings_of)
        if default_name is not None:
            cls.default_name = default_name
        missing = [key for key in ("load_model", "settings_of", "default_name") if not hasattr(cls, key)]
        if missing:
            raise TypeError(f"{cls.__name__} must name its method's {', '.join(missing)} where it is declared.")

    def __init__(
        self,
        model: str | os.PathLike | Any,
        tokenizer: Any = None,
        *,
        penalty: str | None = None,
        penalty_coef: float = 1.0,
        name: str | None = None,
        trust_remote_code: bool = False,
    ):
        super().__init__(penalty=penalty, penalty_coef=penalty_coef, name=self.default_name if name is None else name)
        load = partial(self.load_model, allow_new_head=False, trust_remote_code=trust_remote_code)
        self.model, self.tokenizer = load_for_scoring(model, tokenizer, load)
        self.settings = self.settings_of(unwrap_peft(self.model))


def model_device(model) -> torch.device:
    return next(model.parameters()).device


def weights_fingerprint(model) -> tuple:
    """A cheap fingerprint of a model's weights: changes when a parameter or buffer is replaced, updated in place
    (autograd's version counter: optimizer steps, `load_state_dict`, edits under `torch.no_grad`), re-pointed through
    `.data`, or written through `.data` in place where a strided sample of its values sees it; and when the active
    PEFT adapters change. Reward caches keyed on it never serve values computed with other weights."""
    tensors = [*model.parameters(), *model.buffers()]
    probes = []
    for tensor in tensors:
        flat = tensor.detach().reshape(-1)
        probes.append(
            flat[:: max(1, flat.numel() // 8)].double().sum()
            if flat.numel()
            else flat.new_zeros((), dtype=torch.double)
        )
    sample = torch.stack(probes).tolist() if probes else []
    state = tuple((id(t), t.data_ptr(), t._version) for t in tensors)
    return (id(model), state, tuple(sample), _active_adapters(model))


def _active_adapters(model) -> str:
    """The active PEFT adapters of a PEFT-wrapped model, as text (empty for a plain model)."""
    if not hasattr(model, "get_base_model"):
        return ""
    try:
        adapters = model.active_adapters
        return repr(adapters() if callable(adapters) else adapters)
    except (AttributeError, ValueError):
        return ""


class PrefixCache:
    """A bounded least-recently-used store of prefix key-value caches, by key, limited to `max_bytes` of tensors.

    Example:

    ```python
    >>> cache = PrefixCache(max_bytes=2**30)
    >>> cache.get(("model", (1, 2, 3))) is None
    True
    ```
    """

    def __init__(self, max_bytes: int):
        if max_bytes < 0:
            raise ValueError(f"The prefix cache size must be >= 0 bytes, got {max_bytes}.")
        self.max_bytes = int(max_bytes)
        self.entries: OrderedDict[Hashable, tuple[Any, int]] = OrderedDict()
        self.bytes = 0
        self.hits = self.misses = self.evictions = 0

    def get(self, key: Hashable):
        """The cache stored under `key` (now the most recently used), or `None`."""
        entry = self.entries.get(key)
        if entry is None:
            self.misses += 1
            return None
        self.hits += 1
        self.entries.move_to_end(key)
        return entry[0]

    def put(self, key: Hashable, value: Any, nbytes: int) -> bool:
        """Store `value` (of `nbytes`), evicting least recently used entries to fit; `False` if it cannot fit at all."""
        if nbytes > self.max_bytes:
            return False
        if key in self.entries:
            self.bytes -= self.entries.pop(key)[1]
        while self.entries and self.bytes + nbytes > self.max_bytes:
            self.bytes -= self.entries.popitem(last=False)[1][1]
            self.evictions += 1
        self.entries[key] = (value, nbytes)
        self.bytes += nbytes
        return True

    def clear(self) -> None:
        self.entries.clear()
        self.bytes = 0

    def info(self) -> dict[str, int]:
        """Entries, bytes held, the limit, and hits, misses and evictions so far."""
        return {
            "entries": len(self.entries),
            "bytes": self.bytes,
            "max_bytes": self.max_bytes,
            "hits": self.hits,
            "misses": self.misses,
            "evictions": self.evictions,
        }


class SequenceScorer:
    """Batched scoring of token sequences with a sequence classifier, reusing shared prefixes' key-value caches.

    Rows are arranged as a prefix tree: each distinct prefix (the demonstrations of an ICRM context) is encoded once
    per call and its key-value cache is read by every row after it (one encoded prompt for its G completions); only the
    suffixes are run, packed without padding into one sequence per batch in which each row attends to the prefix and
    to itself ([`~trl_icrm.models.packing.classify_packed_suffixes`]), and pooled at their last non-pad token as the
    classifier does. Encoded prefixes are also kept across
    calls in a [`PrefixCache`] of `prefix_cache_bytes` (least recently used ones dropped first; `0` keeps none), keyed
    by the model's identity and the prefix tokens, and emptied whenever [`weights_fingerprint`] changes: the reward
    model is frozen while it scores, and a weight update invalidates every entry. A caller whose model never changes
    (the reward server) sets `frozen = True`: the weights are then fingerprinted on the first call only. A prefix
    larger than the whole limit is encoded for its call only (one warning). Backbones whose attention layout the shared paths cannot mask
    exactly ([`~trl_icrm.models.packing.prefix_sharing_problem`]) or that fail on them score full sequences, with one
    warning. Scores equal full-sequence scoring up to float rounding.

    Example:

    ```python
    >>> scorer = SequenceScorer(model, tokenizer.pad_token_id, batch_size=16)  # doctest: +SKIP
    >>> logits = scorer.score(encoded)  # doctest: +SKIP
    ```
    """

    def __init__(
        self,
        model,
        pad_token_id: int,
        batch_size: int = 16,
        use_prefix_cache: bool = True,
        prefix_cache_bytes: int = DEFAULT_PREFIX_CACHE_BYTES,
    ):
        self.model = model
        self.pad_token_id = pad_token_id
        self.batch_size = batch_size
        self.use_prefix_cache = use_prefix_cache
        self.prefix_cache = PrefixCache(prefix_cache_bytes)
        self._fingerprint: tuple | None = None
        self.frozen = False  # set by a caller whose model never changes (a server): weights fingerprinted once
        self._cache_failed = False
        problem = prefix_sharing_problem(model) if use_prefix_cache else None
        if problem is not None:
            self._cache_failed = True
            logger.warning("Shared-prefix scoring is off for this model (%s): scoring full sequences.", problem)
        self._warned_too_large = False
        self._last_prefix: tuple[tuple[int, ...], Any] | None = None

    def _forward_full(self, rows: list[list[int]]) -> torch.Tensor:
        ids, mask = pad_right(rows, self.pad_token_id, model_device(self.model))
        return self.model(input_ids=ids, attention_mask=mask, use_cache=False).logits.float()

    def _prefix_cache_of(self, prefix: tuple[int, ...]):
        """The key-value cache of `prefix`: from the cross-call cache, or encoded now (and stored if it fits)."""
        if self._last_prefix is not None and self._last_prefix[0] == prefix:  # the tree's groups come by prefix
            return self._last_prefix[1]
        key = (id(self.model), prefix)
        cache = self.prefix_cache.get(key) if self.prefix_cache.max_bytes else None
        if cache is None:
            cache = self._encode_and_keep(key, prefix)
        self._last_prefix = (prefix, cache)
        return cache

    def _encode_and_keep(self, key: tuple, prefix: tuple[int, ...]):
        cache = encode_prefix(self.model, torch.tensor(prefix, device=model_device(self.model)))
        if self.prefix_cache.max_bytes and not self.prefix_cache.put(key, cache, cache_nbytes(cache)):
            if not self._warned_too_large:
                self._warned_too_large = True
                logger.warning(
                    "A demonstration prefix of %d tokens (%d bytes of key-value cache) exceeds the prefix cache limit "
                    "of %d bytes: such prefixes are encoded for each call without being kept.",
                    len(prefix),
                    cache_nbytes(cache),
                    self.prefix_cache.max_bytes,
                )
        return cache

    def _forward_cached(self, prefix: tuple[int, ...], shared: tuple[int, ...], suffixes: list) -> torch.Tensor:
        """Outputs of `prefix + shared + suffix` rows: the demonstrations' cache (kept across calls), extended by the
        tokens the rows share for this call only, then the suffixes packed into sequences of at most `batch_size` rows
        and `MAX_PACKED_TOKENS` tokens, each row attending to the prefix and to itself ([`classify_packed_suffixes`])."""
        device = model_device(self.model)
        cache = self._prefix_cache_of(prefix) if prefix else None
        if shared:
            cache = extend_prefix_cache(self.model, cache, torch.tensor(shared, device=device))
        out, pack, tokens = [], [], 0
        for row in [*suffixes, None]:
            full = row is None or len(pack) == self.batch_size or (pack and tokens + len(row) > MAX_PACKED_TOKENS)
            if full and pack:
                out.append(classify_packed_suffixes(self.model, pack, self.pad_token_id, cache).float())
                pack, tokens = [], 0
            if row is not None:
                pack.append(row)
                tokens += len(row)
        return torch.cat(out)

    def _check_weights(self) -> None:
        """Empty the cross-call cache if the model's weights changed since the last call (checked once when
        `frozen`: fingerprinting a model's every tensor costs more than scoring one short completion)."""
        if not self.prefix_cache.max_bytes or (self.frozen and self._fingerprint is not None):
            return
        fingerprint = weights_fingerprint(self.model)
        if fingerprint != self._fingerprint:
            self.prefix_cache.clear()
            self._fingerprint = fingerprint

    def clear_cache(self) -> None:
        """Drop every prefix cache kept across calls."""
        self.prefix_cache.clear()

    @torch.inference_mode()
    def score(self, encoded: Sequence[EncodedQuery]) -> torch.Tensor:
        """Classifier outputs `(len(encoded), num_labels)` for the sequences `prefix_ids + query_ids`."""
        if not encoded:
            return torch.zeros(0, unwrap_peft(self.model).config.num_labels)
        logits: list[torch.Tensor | None] = [None] * len(encoded)
        cached = self.use_prefix_cache and not self._cache_failed
        if cached:
            self._check_weights()
        try:
            return self._score(encoded, logits, cached)
        finally:
            self._last_prefix = None

    def _score(self, encoded: Sequence[EncodedQuery], logits: list, cached: bool) -> torch.Tensor:
        naive = []
        for (prefix, shared), members in group_by_prefix(encoded, cached, self.pad_token_id).items():
            if cached and not self._cache_failed:
                try:
                    skip = len(prefix) + len(shared)
                    scored = self._forward_cached(prefix, shared, [encoded[i].input_ids[skip:] for i in members])
                except (TypeError, AttributeError, KeyError, NotImplementedError, ValueError, RuntimeError) as error:
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


def group_by_prefix(
    encoded: Sequence[EncodedQuery], share_prompts: bool = True, pad_token_id: int | None = None
) -> dict[tuple[tuple[int, ...], tuple[int, ...]], list[int]]:
    """Rows as a prefix tree: `{(demonstration prefix, shared query tokens): rows}`. Rows group by their
    demonstrations, then (with `share_prompts`) by the longest run of query tokens that several of them share (a
    prompt and its G completions; at least `MIN_SHARED_QUERY_TOKENS`). Each row keeps the token it is pooled at (its
    rightmost token that is not `pad_token_id`, as transformers' classifiers pool; its last token without one) out
    of the shared run, so identical rows, or rows that differ only by trailing pad-id tokens (an eos that is also the
    pad token), are still pooled where full-sequence scoring pools them."""
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, item in enumerate(encoded):
        groups.setdefault(tuple(item.prefix_ids), []).append(i)
    tree: dict[tuple[tuple[int, ...], tuple[int, ...]], list[int]] = {}
    for prefix, members in groups.items():
        if not share_prompts:
            tree[(prefix, ())] = members
            continue
        queries = [encoded[i].query_ids for i in members]
        for shared, rows in _shared_query_runs(queries, [pooled_index(q, pad_token_id) for q in queries]):
            tree.setdefault((prefix, shared), []).extend(members[j] for j in rows)
    return tree


def pooled_index(ids: Sequence[int], pad_token_id: int | None) -> int:
    """The position a sequence classifier pools the token list `ids` at, as `trl_icrm.models.packing` pools a tensor row:
    the rightmost token that is not the pad token (0 if every token is; the last token without a pad token)."""
    return next((i for i in range(len(ids) - 1, -1, -1) if ids[i] != pad_token_id), 0)


def _shared_query_runs(
    queries: Sequence[Sequence[int]], pooled: Sequence[int], min_shared: int = MIN_SHARED_QUERY_TOKENS
):
    """Yields `(shared tokens, row indices)`: rows grouped by a common leading run of at least `min_shared` query
    tokens (the longest the group shares that ends before every row's pooled position `pooled[j]`), or alone with
    nothing shared."""
    order = sorted(range(len(queries)), key=lambda j: queries[j])
    clusters: list[list[int]] = []
    for j in order:
        if clusters and _common_length(queries[clusters[-1][0]], queries[j]) >= min_shared:
            clusters[-1].append(j)
        else:
            clusters.append([j])
    for rows in clusters:
        if len(rows) == 1:
            yield (), rows
            continue
        first = queries[rows[0]]
        length = min(min(_common_length(first, queries[j]) for j in rows), min(pooled[j] for j in rows))
        yield (tuple(first[:length]) if length >= min_shared else ()), rows


def _common_length(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


__all__ = [
    "DEFAULT_PREFIX_CACHE_BYTES",
    "PrefixCache",
    "SequenceScorer",
    "TrainedRewardModel",
    "group_by_prefix",
    "pooled_index",
    "load_for_scoring",
    "model_device",
    "weights_fingerprint",
]
