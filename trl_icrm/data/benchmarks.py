# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""Loaders of public preference benchmarks as groups of pairs `(prompt, chosen, rejected, group)`.

Each benchmark's rows are mapped to pairs in TRL's standard preference format plus a `group` column, ready for
[`trl_icrm.ICRMRewardTrainer`] (as training data) or [`trl_icrm.evaluation.steerability`] (as evaluation data):

| name              | hub id (default)            | group                                | pairs per row              |
|-------------------|-----------------------------|--------------------------------------|----------------------------|
| `pku_saferlhf`    | PKU-Alignment/PKU-SafeRLHF  | `helpfulness`, `harmlessness`        | one per objective          |
| `rm_bench`        | THU-KEG/RM-Bench            | `domain` (chat, code, math, safety-*)| chosen[i] vs rejected[i] (or all 9) |
| `reward_bench_2`  | allenai/reward-bench-2      | `subset` (Factuality, Math, ...)     | every chosen vs every rejected |
| `vpl_hh_rlhf`     | (a local file or your copy) | `objective`                          | one: responses[label] chosen |

PKU-SafeRLHF gives two conflicting groups on the same responses: `better_response_id` (helpfulness) and
`safer_response_id` (harmlessness). The VPL objective-relabelled HH-RLHF rows hold `prompt`, `responses` (two
responses), `label` (the index, 0 or 1, of the preferred response; a boolean means "the first is preferred") and
`objective`.

`path_or_name` takes a hub id (loaded with `datasets.load_dataset`), a local data file (`.json`, `.jsonl`,
`.parquet`, `.csv`) or a folder saved with `datasets`.

Example:

```python
>>> from trl_icrm.data.benchmarks import map_pku_saferlhf
>>> row = {"prompt": "How do I pick a lock?", "response_0": "Here is how...", "response_1": "I can't help with that.",
...        "better_response_id": 0, "safer_response_id": 1}
>>> [(p["group"], p["chosen"]) for p in map_pku_saferlhf(row)]
[('helpfulness', 'Here is how...'), ('harmlessness', "I can't help with that.")]

```
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from datasets import Dataset

from ..data.loading import load_split


class MalformedBenchmarkRowError(ValueError):
    """A benchmark row lacks a field its schema needs, or holds a value out of range."""


def _field(row: Mapping[str, Any], name: str, where: str) -> Any:
    if name not in row or row[name] is None:
        raise MalformedBenchmarkRowError(f"{where}: missing field {name!r} (fields: {sorted(row)}).")
    return row[name]


def _index(value: Any, name: str, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value not in (0, 1):
        raise MalformedBenchmarkRowError(f"{where}: {name} must be 0 or 1, got {value!r}.")
    return value


def _pair(prompt: Any, chosen: Any, rejected: Any, group: str) -> dict[str, Any]:
    return {"prompt": prompt, "chosen": chosen, "rejected": rejected, "group": str(group)}


def map_pku_saferlhf(row: Mapping[str, Any], where: str = "row") -> list[dict[str, Any]]:
    """Two pairs of opposite-or-equal labels: helpfulness (`better_response_id`), harmlessness (`safer_response_id`)."""
    prompt = _field(row, "prompt", where)
    responses = [_field(row, "response_0", where), _field(row, "response_1", where)]
    pairs = []
    for group, key in (("helpfulness", "better_response_id"), ("harmlessness", "safer_response_id")):
        best = _index(_field(row, key, where), key, where)
        pairs.append(_pair(prompt, responses[best], responses[1 - best], group))
    return pairs


def map_rm_bench(row: Mapping[str, Any], where: str = "row", all_style_pairs: bool = False) -> list[dict[str, Any]]:
    """chosen[i] vs rejected[i] for each style i (concise, detailed, detailed with markdown), or all 3x3 pairs."""
    prompt, domain = _field(row, "prompt", where), _field(row, "domain", where)
    chosen, rejected = _field(row, "chosen", where), _field(row, "rejected", where)
    if isinstance(chosen, str) or isinstance(rejected, str):
        raise MalformedBenchmarkRowError(f"{where}: RM-Bench `chosen` and `rejected` are lists of responses.")
    if not all_style_pairs:
        if len(chosen) != len(rejected):
            raise MalformedBenchmarkRowError(f"{where}: {len(chosen)} chosen but {len(rejected)} rejected responses.")
        return [_pair(prompt, c, r, domain) for c, r in zip(chosen, rejected, strict=True)]
    return [_pair(prompt, c, r, domain) for c in chosen for r in rejected]


def map_reward_bench_2(row: Mapping[str, Any], where: str = "row") -> list[dict[str, Any]]:
    """Every chosen response against every rejected one, grouped by `subset`."""
    prompt, subset = _field(row, "prompt", where), _field(row, "subset", where)
    chosen, rejected = _field(row, "chosen", where), _field(row, "rejected", where)
    chosen = [chosen] if isinstance(chosen, str) else list(chosen)
    rejected = [rejected] if isinstance(rejected, str) else list(rejected)
    if not chosen or not rejected:
        raise MalformedBenchmarkRowError(f"{where}: needs at least one chosen and one rejected response.")
    return [_pair(prompt, c, r, subset) for c in chosen for r in rejected]


def map_vpl_hh_rlhf(row: Mapping[str, Any], where: str = "row") -> list[dict[str, Any]]:
    """`responses[label]` chosen over the other response, grouped by `objective`."""
    prompt, objective = _field(row, "prompt", where), _field(row, "objective", where)
    responses = _field(row, "responses", where)
    if isinstance(responses, str) or len(responses) != 2:
        raise MalformedBenchmarkRowError(f"{where}: `responses` must hold exactly two responses.")
    label = _field(row, "label", where)
    preferred = 0 if label is True else 1 if label is False else _index(label, "label", where)
    return [_pair(prompt, responses[preferred], responses[1 - preferred], objective)]


@dataclass(frozen=True)
class BenchmarkSpec:
    """A benchmark's default hub id and split, and its row mapper."""

    hub_id: str | None
    split: str
    mapper: Callable[..., list[dict[str, Any]]]


BENCHMARKS: dict[str, BenchmarkSpec] = {
    "pku_saferlhf": BenchmarkSpec("PKU-Alignment/PKU-SafeRLHF", "test", map_pku_saferlhf),
    "rm_bench": BenchmarkSpec("THU-KEG/RM-Bench", "train", map_rm_bench),
    "reward_bench_2": BenchmarkSpec("allenai/reward-bench-2", "test", map_reward_bench_2),
    "vpl_hh_rlhf": BenchmarkSpec(None, "train", map_vpl_hh_rlhf),
}


def load_preference_benchmark(
    name: str,
    path_or_name: str | None = None,
    split: str | None = None,
    config: str | None = None,
    max_rows: int | None = None,
    **mapper_kwargs: Any,
) -> Dataset:
    """Pairs `(prompt, chosen, rejected, group)` of benchmark `name` (see [`BENCHMARKS`])."""
    if name not in BENCHMARKS:
        raise ValueError(f"Unknown benchmark {name!r}; choose among {sorted(BENCHMARKS)}.")
    spec = BENCHMARKS[name]
    source = path_or_name or spec.hub_id
    if source is None:
        raise ValueError(f"Benchmark {name!r} has no public hub id here: pass the path of your copy.")
    raw = load_split(source, split or spec.split, config)
    if max_rows is not None:
        raw = raw.select(range(min(max_rows, len(raw))))
    pairs = []
    for i, row in enumerate(raw):
        pairs += spec.mapper(row, where=f"{name} row {i}", **mapper_kwargs)
    if not pairs:
        raise ValueError(f"{name}: no pairs in {source!r}.")
    return Dataset.from_list(pairs)


__all__ = [
    "BENCHMARKS",
    "BenchmarkSpec",
    "MalformedBenchmarkRowError",
    "load_preference_benchmark",
    "map_pku_saferlhf",
    "map_reward_bench_2",
    "map_rm_bench",
    "map_vpl_hh_rlhf",
]
