# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""Spurious-correlation splits of preference pairs: response length agrees with the label in training, and is
balanced or reversed at evaluation.

From a training pool and a held-out pool of pairs, [`length_bias_splits`] makes

- `train`: pairs in which the chosen response is the longer one in a share `bias` (e.g. 90%) of the pairs;
- `in_distribution`: held-out pairs with the same share (ordinary held-out pairs of the training distribution);
- `balanced`: held-out pairs, chosen longer in half of them;
- `reversed`: held-out pairs in which the chosen response is always the shorter one.

Length is counted in words of the response text; pairs whose two responses have the same length are left out. A model
that learned "longer is better" scores about `bias` on `in_distribution`, 0.5 on `balanced` and near 0 on `reversed`.

Example:

```python
>>> from trl_icrm.data.spurious import chosen_is_longer
>>> chosen_is_longer({"prompt": "Hi", "chosen": "Hello there, friend.", "rejected": "Hi."})
True

```
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any


def response_words(value: Any) -> int:
    """Words of a response: a string, or the contents of a list of chat messages."""
    if isinstance(value, str):
        return len(value.split())
    return sum(len(str(message.get("content", "")).split()) for message in value)


def chosen_is_longer(pair: Mapping[str, Any]) -> bool | None:
    """Whether the chosen response has more words than the rejected one (`None` for equal lengths)."""
    chosen, rejected = response_words(pair["chosen"]), response_words(pair["rejected"])
    return None if chosen == rejected else chosen > rejected


def biased_sample(
    pairs: Sequence[Mapping[str, Any]], size: int, longer_fraction: float, rng: random.Random
) -> list[dict[str, Any]]:
    """`size` pairs of which `round(longer_fraction * size)` have the longer response chosen, the rest the shorter
    one, drawn without replacement and shuffled; an error if the pool has too few of either kind."""
    longer = [dict(p) for p in pairs if chosen_is_longer(p) is True]
    shorter = [dict(p) for p in pairs if chosen_is_longer(p) is False]
    num_longer = round(longer_fraction * size)
    num_shorter = size - num_longer
    if num_longer > len(longer) or num_shorter > len(shorter):
        raise ValueError(
            f"Cannot draw {size} pairs with {num_longer} chosen-longer and {num_shorter} chosen-shorter ones: the pool "
            f"has {len(longer)} and {len(shorter)}."
        )
    drawn = rng.sample(longer, num_longer) + rng.sample(shorter, num_shorter)
    rng.shuffle(drawn)
    return drawn


def length_bias_splits(
    train_pool: Sequence[Mapping[str, Any]],
    test_pool: Sequence[Mapping[str, Any]],
    train_size: int,
    eval_size: int,
    bias: float = 0.9,
    seed: int = 0,
) -> dict[str, list[dict[str, Any]]]:
    """`train` (`train_size` pairs, chosen longer in a share `bias`) from `train_pool`, and the `in_distribution`
    (share `bias`), `balanced` (share 0.5) and `reversed` (share 0) evaluation sets of `eval_size` pairs each from
    `test_pool` (each drawn on its own, so they may share pairs)."""
    if not 0.5 <= bias <= 1.0:
        raise ValueError(f"bias is the share of chosen-longer training pairs, in [0.5, 1]; got {bias}.")
    shares = {"train": bias, "in_distribution": bias, "balanced": 0.5, "reversed": 0.0}
    out = {}
    for name, share in shares.items():
        pool, size = (train_pool, train_size) if name == "train" else (test_pool, eval_size)
        out[name] = biased_sample(pool, size, share, random.Random(f"{seed}-{name}"))
    return out


def longer_share(pairs: Sequence[Mapping[str, Any]]) -> float:
    """The share of pairs whose chosen response is the longer one."""
    flags = [chosen_is_longer(p) for p in pairs]
    return sum(flag is True for flag in flags) / max(len(flags), 1)


__all__ = ["biased_sample", "chosen_is_longer", "length_bias_splits", "longer_share", "response_words"]
