# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""The one demonstration sampler: K demonstrations of a group, never the item itself, seeded.

Every place that draws demonstrations (the trainer's collator, the reward's bank mode, the math recipe's
`demonstrations` column, the steerability evaluation) draws through these functions, so a draw depends only on the
seed and the keys it is given (e.g. `(seed, epoch, dataset, row)`), never on batch composition or call order:

- [`seeded_rng`]: a generator seeded by `seed` and any keys (ints as they are, strings by their CRC-32, anything else
  by the CRC-32 of its `repr`);
- [`draw_k`]: K ~ U{min_k..max_k}, capped at what is available;
- [`sample_without_replacement`]: k items of a sequence;
- [`DemonstrationBank`]: pairs by group, drawing K of a group while leaving out the item's own pairs.

Example:

```python
>>> from trl_icrm.demonstrations import DemonstrationBank, seeded_rng
>>> bank = DemonstrationBank.from_rows(
...     [{"prompt": f"q{i}", "chosen": "a", "rejected": "b", "group": "g", "question": f"q{i}"} for i in range(4)],
...     key_column="question",
... )
>>> drawn = bank.draw("g", 2, seeded_rng(0, "q1"), exclude="q1")
>>> len(drawn), all(pair["prompt"] != "q1" for pair in drawn)
(2, True)
```
"""

from __future__ import annotations

import zlib
from collections import defaultdict
from collections.abc import Hashable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

import numpy as np


T = TypeVar("T")

DEMONSTRATION_KEYS = ("prompt", "chosen", "rejected")
"""The keys of one demonstration pair."""


def stable_seed(key: Any) -> int:
    """A non-negative integer for `key`, the same in every process and run (unlike `hash`)."""
    if isinstance(key, (int, np.integer)) and not isinstance(key, bool) and key >= 0:
        return int(key)
    if isinstance(key, str):
        return zlib.crc32(key.encode())
    return zlib.crc32(repr(key).encode())


def seeded_rng(seed: int, *keys: Any) -> np.random.Generator:
    """A numpy generator seeded by `seed` and `keys` ([`stable_seed`] of each)."""
    return np.random.default_rng([int(seed), *(stable_seed(key) for key in keys)])


def draw_k(rng: np.random.Generator, min_k: int, max_k: int, available: int) -> int:
    """K ~ U{min_k..max_k}, both ends capped at `available`."""
    high = min(max_k, available)
    return int(rng.integers(min(min_k, high), high + 1))


def sample_without_replacement(items: Sequence[T], k: int, rng: np.random.Generator) -> list[T]:
    """`k` items of `items` drawn without replacement (in draw order); raises if there are fewer than `k`."""
    if k > len(items):
        raise ValueError(f"Cannot draw {k} demonstrations from a pool of {len(items)}.")
    if k <= 0:
        return []
    return [items[int(j)] for j in rng.choice(len(items), size=k, replace=False)]


def as_demonstration(row: Mapping[str, Any]) -> dict[str, Any]:
    """The `{prompt, chosen, rejected}` pair of a preference row."""
    return {key: row[key] for key in DEMONSTRATION_KEYS}


class DemonstrationBank:
    """Demonstrations by group, with the key of the item each came from (to leave an item's own pairs out).

    Args:
        groups: `{group: [demonstration, ...]}`; a demonstration is any mapping (usually `{prompt, chosen, rejected}`).
        keys: `{group: [key, ...]}` parallel to `groups` (e.g. the problem each pair was made from); optional.
    """

    def __init__(self, groups: Mapping[Hashable, Sequence[Any]], keys: Mapping[Hashable, Sequence[Any]] | None = None):
        self.groups = {group: list(pairs) for group, pairs in groups.items()}
        self.keys = {group: list(keys[group]) if keys else [None] * len(pairs) for group, pairs in self.groups.items()}

    @classmethod
    def from_rows(
        cls, rows: Iterable[Mapping[str, Any]], group_column: str = "group", key_column: str | None = None
    ) -> DemonstrationBank:
        """A bank of the `{prompt, chosen, rejected}` pairs of preference rows, by `group_column` (as a string)."""
        groups: dict[str, list] = defaultdict(list)
        keys: dict[str, list] = defaultdict(list)
        for row in rows:
            group = str(row[group_column])
            groups[group].append(as_demonstration(row))
            keys[group].append(row.get(key_column) if key_column else None)
        return cls(groups, keys)

    def __contains__(self, group: Hashable) -> bool:
        return group in self.groups

    def __len__(self) -> int:
        """The number of groups."""
        return len(self.groups)

    def candidates(self, group: Hashable, exclude: Any = None) -> list[Any]:
        """The demonstrations of `group` whose key is not `exclude` (all of them when `exclude` is None)."""
        pairs = self.groups.get(group, [])
        if exclude is None or not pairs:
            return list(pairs)
        return [pair for pair, key in zip(pairs, self.keys[group], strict=True) if key != exclude]

    def draw(
        self, group: Hashable, k: int, rng: np.random.Generator, exclude: Any = None, strict: bool = False
    ) -> list[Any]:
        """Up to `k` demonstrations of `group`, none with key `exclude` (`strict`: exactly `k`, or an error)."""
        candidates = self.candidates(group, exclude)
        return sample_without_replacement(candidates, k if strict else min(k, len(candidates)), rng)

    def draw_between(
        self, group: Hashable, min_k: int, max_k: int, rng: np.random.Generator, exclude: Any = None
    ) -> list[Any]:
        """K ~ U{min_k..max_k} demonstrations of `group` ([`draw_k`], capped at what there is), none with key
        `exclude` (the trainer's draw: a row's own pair is never its demonstration)."""
        candidates = self.candidates(group, exclude)
        return sample_without_replacement(candidates, draw_k(rng, min_k, max_k, len(candidates)), rng)

    def draw_for_key(self, key: Hashable, k: int, seed: int, prompt: Any = None, per_key: bool = False) -> list[Any]:
        """Up to `k` demonstrations of the group named `key`, seeded by `(seed, (key, prompt))`, or by `(seed, key)`
        with `per_key` (every prompt of a key then shares one set): the draw of `ICRMReward`'s bank mode and of the
        reward server, so both give a key and a prompt the same demonstrations."""
        rng = seeded_rng(seed, key) if per_key else seeded_rng(seed, (key, prompt))
        return self.draw(key, k, rng)


def draw_mixed(pools: Sequence[Sequence[T]], counts: Sequence[int], rng: np.random.Generator) -> list[T]:
    """`counts[i]` demonstrations drawn without replacement from `pools[i]`, in a random order."""
    drawn: list[T] = []
    for pool, count in zip(pools, counts, strict=True):
        drawn += sample_without_replacement(pool, count, rng)
    return [drawn[j] for j in rng.permutation(len(drawn))]


__all__ = [
    "DEMONSTRATION_KEYS",
    "DemonstrationBank",
    "as_demonstration",
    "draw_k",
    "draw_mixed",
    "sample_without_replacement",
    "seeded_rng",
    "stable_seed",
]
