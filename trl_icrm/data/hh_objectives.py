# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""A multi-objective preference set from real dialogues: HH-RLHF pairs relabelled under objectives that disagree.

Every HH-RLHF pair (two transcripts that differ in the last assistant turn) is split into a prompt and two answers
(`trl_icrm.data.preferences`), then labelled once per objective by a documented rule on the two answers. An objective
that cannot tell the two answers apart (a tie) drops the pair; so the same pair appears under several objectives,
with opposite labels under objectives that disagree (conflicting twins share a `pair_id`).

| objective | prefers | tie (pair dropped) |
| --- | --- | --- |
| `harmless` | the answer the HH-RLHF annotators chose (harmlessness) | never |
| `compliant` | the other answer: the more compliant one | never |
| `concise` | the answer with fewer words | equal word counts |
| `verbose` | the answer with more words | equal word counts |
| `clarifying` | the answer that asks a question (a sentence ending in `?`) | both or neither ask one |
| `no_refusal` | the answer without a refusal phrase (`REFUSAL_PATTERN`) | both or neither refuse |

Prompts, not pairs, are split into train and held-out (by a seeded permutation of the distinct prompts), so no
held-out prompt is seen in training under any objective. The held-out objectives (`clarifying` and `no_refusal` by
default) are left out of the training split entirely and appear only in the held-out split.

Example:

```python
>>> from datasets import Dataset
>>> from trl_icrm.data.hh_objectives import build_hh_objectives
>>> rows = [{"chosen": "\\n\\nHuman: Help me?\\n\\nAssistant: Sure, what do you need?",
...          "rejected": "\\n\\nHuman: Help me?\\n\\nAssistant: I'm sorry, I can't."}]
>>> splits = build_hh_objectives(Dataset.from_list(rows), held_out_fraction=0.0, held_out_objectives=())
>>> sorted(splits["train"]["group"])
['clarifying', 'compliant', 'concise', 'harmless', 'no_refusal', 'verbose']

```
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from datasets import Dataset, DatasetDict

from .preferences import standardize_preferences


REFUSAL_PATTERN = re.compile(
    r"\b(I'm sorry|I am sorry|I apologi[sz]e|I can't|I cannot|I can not|I won't|I will not|I'm not able|"
    r"I am not able|I'm unable|I am unable|I don't think I can|I'd rather not|I would rather not|"
    r"I'm not comfortable|I am not comfortable|I don't feel comfortable|that's not something I|"
    r"it's not appropriate|it is not appropriate|is illegal|I'm not going to|I am not going to)",
    re.IGNORECASE,
)
"""Phrases that mark an answer as a refusal (rule of the `no_refusal` objective)."""

_QUESTION = re.compile(r"\?(\s|$)")


def _text(completion: Any) -> str:
    """The text of a completion (a string, or the content of its assistant messages), typographic apostrophes
    written as `'` so that the rules' phrases match either spelling."""
    text = completion if isinstance(completion, str) else " ".join(message["content"] for message in completion)
    return text.replace("\u2019", "'")


def _words(text: str) -> int:
    return len(text.split())


def _prefer(chosen_score: float, rejected_score: float) -> int | None:
    """+1: the original chosen answer is preferred; -1: the original rejected one; None: a tie."""
    if chosen_score == rejected_score:
        return None
    return 1 if chosen_score > rejected_score else -1


Rule = Callable[[str, str], "int | None"]

OBJECTIVES: dict[str, Rule] = {
    "harmless": lambda chosen, rejected: 1,
    "compliant": lambda chosen, rejected: -1,
    "concise": lambda chosen, rejected: _prefer(-_words(chosen), -_words(rejected)),
    "verbose": lambda chosen, rejected: _prefer(_words(chosen), _words(rejected)),
    "clarifying": lambda chosen, rejected: _prefer(bool(_QUESTION.search(chosen)), bool(_QUESTION.search(rejected))),
    "no_refusal": lambda chosen, rejected: _prefer(
        not REFUSAL_PATTERN.search(chosen), not REFUSAL_PATTERN.search(rejected)
    ),
}
"""Each objective's rule on (original chosen text, original rejected text): which answer it prefers, or a tie."""

DEFAULT_HELD_OUT_OBJECTIVES = ("clarifying", "no_refusal")


def label_pair(row: Mapping[str, Any], objective: str) -> dict[str, Any] | None:
    """`row` (explicit prompt format) relabelled under `objective`, or None where the objective ties."""
    sign = OBJECTIVES[objective](_text(row["chosen"]), _text(row["rejected"]))
    if sign is None:
        return None
    chosen, rejected = (row["chosen"], row["rejected"]) if sign > 0 else (row["rejected"], row["chosen"])
    return {"prompt": row["prompt"], "chosen": chosen, "rejected": rejected, "group": objective}


def split_prompts(prompts: Sequence[Any], held_out_fraction: float, seed: int) -> np.ndarray:
    """A boolean mask over `prompts`: True where the prompt is held out. Equal prompts fall on the same side."""
    if not 0.0 <= held_out_fraction < 1.0:
        raise ValueError(f"held_out_fraction must be in [0, 1), got {held_out_fraction}.")
    keys = [json.dumps(prompt, sort_keys=True) for prompt in prompts]
    distinct = sorted(set(keys))
    order = np.random.default_rng(seed).permutation(len(distinct))
    held_out = {distinct[i] for i in order[: round(held_out_fraction * len(distinct))]}
    return np.array([key in held_out for key in keys], dtype=bool)


def build_hh_objectives(
    dataset: Dataset,
    objectives: Sequence[str] = tuple(OBJECTIVES),
    held_out_objectives: Sequence[str] = DEFAULT_HELD_OUT_OBJECTIVES,
    held_out_fraction: float = 0.25,
    seed: int = 0,
) -> DatasetDict:
    """`train` (the seen objectives on the training prompts) and `test` (every objective on the held-out prompts)
    splits with columns `prompt`, `chosen`, `rejected`, `group` (the objective) and `pair_id` (the source row)."""
    unknown = sorted(set(objectives) - set(OBJECTIVES))
    if unknown:
        raise ValueError(f"Unknown objective(s) {unknown}; choose from {sorted(OBJECTIVES)}.")
    if set(held_out_objectives) - set(objectives):
        raise ValueError(
            f"held_out_objectives {list(held_out_objectives)} must be among objectives {list(objectives)}."
        )
    pairs = standardize_preferences(dataset)
    held_out = split_prompts(pairs["prompt"], held_out_fraction, seed)
    splits: dict[str, list[dict[str, Any]]] = {"train": [], "test": []}
    for pair_id, row in enumerate(pairs):
        split = "test" if held_out[pair_id] else "train"
        for objective in objectives:
            if split == "train" and objective in held_out_objectives:
                continue
            labelled = label_pair(row, objective)
            if labelled is not None:
                splits[split].append({**labelled, "pair_id": pair_id})
    return DatasetDict({name: Dataset.from_list(rows) for name, rows in splits.items() if rows})


def objective_summary(splits: DatasetDict) -> dict[str, dict[str, int]]:
    """Per split: pairs per objective, and `conflicting_pairs`, the source pairs that two objectives label
    oppositely (a pair's twins under objectives that disagree)."""
    summary: dict[str, dict[str, int]] = {}
    for name, split in splits.items():
        counts: dict[str, int] = {}
        chosen_by_pair: dict[int, set[str]] = {}
        for row in split:
            counts[row["group"]] = counts.get(row["group"], 0) + 1
            chosen_by_pair.setdefault(row["pair_id"], set()).add(json.dumps(row["chosen"]))
        counts = dict(sorted(counts.items()))
        counts["conflicting_pairs"] = sum(len(chosen) > 1 for chosen in chosen_by_pair.values())
        summary[name] = counts
    return summary


__all__ = [
    "DEFAULT_HELD_OUT_OBJECTIVES",
    "OBJECTIVES",
    "REFUSAL_PATTERN",
    "build_hh_objectives",
    "label_pair",
    "objective_summary",
    "split_prompts",
]
