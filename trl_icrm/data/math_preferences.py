# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""The math recipe's data: problems with a group, preference pairs labelled by a verifier, demonstration columns.

The recipe (`trl-icrm build-math-preferences`, `train`, `laplace`, `grpo`) compares rewards on math problems with
verifiable answers. Its data, built here:

- problems: [`load_math_problems`] (built-in generator, optionally with plain arithmetic such as "What is 23 + 19?",
  or a hub dataset with GSM8K's schema) with a `group` column ([`group_of`]);
- preference pairs: [`build_preference_pairs`] turns sampled solutions labelled by the verifier into pairs (a correct
  solution chosen, an incorrect one rejected) that keep their group; [`load_preferences`] reads them back and
  `trl_icrm.data.loading.load_training_pairs` splits them as `trl-icrm train` does;
- demonstrations: [`add_demonstrations`] (with `trl_icrm.demonstrations.DemonstrationBank`) gives each GRPO prompt a
  `demonstrations` column of `{prompt, chosen, rejected}` pairs of its own group, never of the problem itself.

Example:

```python
>>> from trl_icrm.data.math_preferences import build_preference_pairs
>>> problems = [{"prompt": "What is 2 + 3?", "solution": "5", "question": "What is 2 + 3?", "group": "plain"}]
>>> pairs = build_preference_pairs(problems, [["It is 5.", "It is 6."]], [[1.0, 0.0]])
>>> pairs[0]["chosen"], pairs[0]["rejected"], pairs[0]["group"]
('It is 5.', 'It is 6.', 'plain')

```
"""

from __future__ import annotations

import logging
import math
import os
import zlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..demonstrations import DemonstrationBank, seeded_rng
from .math_problems import make_arithmetic_problems, make_prompt


logger = logging.getLogger(__name__)

GROUP_BY_CHOICES = ("family", "difficulty", "family_difficulty", "none")
"""How problems are grouped for ICRM demonstrations (the `group` column)."""

DEFAULT_PREFERENCES_DIR = "outputs/math-preferences"
"""Where `trl-icrm build-math-preferences` saves the pairs by default."""

PLAIN_FAMILY = "plain"
"""Family name of plain arithmetic problems ("What is 23 + 19?")."""


# Problems
def _stable_fraction(text: str, salt: str) -> float:
    return zlib.crc32(f"{salt}:{text}".encode()) / 2**32


def plain_question(expression: str) -> str:
    """The plain arithmetic question of an expression: `"What is 23 + 19?"`."""
    return f"What is {expression}?"


def make_math_problems(
    num_train: int = 64,
    num_test: int = 32,
    difficulties: Sequence[int] = (1,),
    plain_fraction: float = 0.5,
    seed: int = 0,
    conversational: bool = True,
):
    """Built-in problems ([`~trl_icrm.data.math_problems.make_arithmetic_problems`]) where a share is asked as plain
    arithmetic ("What is 23 + 19?", family `"plain"`) instead of a word problem.

    Which rows become plain is a fixed function of the problem text, and a plain test problem whose question is also
    a training question is dropped, so the splits stay disjoint. Plain problems are the easiest kind: a small policy
    solves some of them, which gives rewards a signal.

    Returns:
        `DatasetDict` with "train" and "test" and the columns of `make_arithmetic_problems`.
    """
    if not 0.0 <= plain_fraction <= 1.0:
        raise ValueError(f"`plain_fraction` must be in [0, 1], got {plain_fraction}.")
    problems = make_arithmetic_problems(
        num_train=num_train, num_test=num_test, difficulties=list(difficulties), seed=seed, conversational=True
    )
    if plain_fraction == 0.0 and conversational:
        return problems

    def rewrite(row: dict[str, Any]) -> dict[str, Any]:
        question, family = row["question"], row["family"]
        if _stable_fraction(row["question"], "plain") < plain_fraction:
            question, family = plain_question(row["expression"]), PLAIN_FAMILY
        return {"question": question, "family": family, "prompt": make_prompt(question, conversational)}

    from datasets import DatasetDict

    problems = DatasetDict(
        {
            name: split.remove_columns("prompt").map(rewrite).select_columns(split.column_names)
            if len(split)
            else split
            for name, split in problems.items()
        }
    )
    train_questions = set(problems["train"]["question"])
    problems["test"] = problems["test"].filter(lambda row: row["question"] not in train_questions)
    return problems


def group_of(row: Mapping[str, Any], group_by: str = "family") -> str:
    """The ICRM group of a problem row: its family, its difficulty, both, or one group for all (`"none"`, and rows
    without the column, such as GSM8K's)."""
    if group_by not in GROUP_BY_CHOICES:
        raise ValueError(f"`group_by` must be one of {GROUP_BY_CHOICES}, got {group_by!r}.")
    family, difficulty = row.get("family"), row.get("difficulty")
    if group_by == "family" and family is not None:
        return str(family)
    if group_by == "difficulty" and difficulty is not None:
        return f"difficulty-{difficulty}"
    if group_by == "family_difficulty" and family is not None and difficulty is not None:
        return f"{family}/difficulty-{difficulty}"
    return "all"


def add_group_column(dataset, group_by: str = "family", column: str = "group"):
    """`dataset` with a `group` column from [`group_of`]."""
    groups = [group_of(row, group_by) for row in dataset]
    if column in dataset.column_names:
        dataset = dataset.remove_columns(column)
    return dataset.add_column(column, groups)


def load_math_problems(
    dataset_name: str | None = None,
    dataset_config: str | None = None,
    train_split: str = "train",
    test_split: str = "test",
    num_train: int = 64,
    num_test: int = 32,
    difficulties: Sequence[int] = (1,),
    plain_fraction: float = 0.5,
    group_by: str = "family",
    seed: int = 0,
):
    """Problems of the recipe with a `group` column: built-in ([`make_math_problems`]) or, with `dataset_name`, a
    dataset with GSM8K's schema ([`~trl_icrm.data.math_problems.load_gsm8k_like`]; its first `num_train`/`num_test` rows).

    Returns:
        `DatasetDict` with "train" and "test"; each row has `prompt`, `solution`, `question` and `group`.
    """
    from datasets import DatasetDict

    if dataset_name:
        from .math_problems import load_gsm8k_like

        problems = DatasetDict(
            {
                "train": load_gsm8k_like(dataset_name, split=train_split, name=dataset_config, num_rows=num_train),
                "test": load_gsm8k_like(dataset_name, split=test_split, name=dataset_config, num_rows=num_test),
            }
        )
    else:
        problems = make_math_problems(num_train, num_test, difficulties, plain_fraction, seed)
    return DatasetDict({name: add_group_column(split, group_by) for name, split in problems.items()})


# Preference pairs
def reference_completion(solution: str, conversational: bool = True) -> Any:
    """A minimal correct solution written from the reference answer (used when no sample of a problem is correct)."""
    text = f"The answer is \\boxed{{{solution}}}."
    return [{"role": "assistant", "content": text}] if conversational else text


def _text_of(completion: Any) -> str:
    if isinstance(completion, str):
        return completion
    return "\n".join(str(message.get("content", "")) for message in completion)


def build_preference_pairs(
    problems: Sequence[Mapping[str, Any]],
    completions: Sequence[Sequence[Any]],
    rewards: Sequence[Sequence[float | None]],
    max_pairs_per_problem: int = 4,
    reference_fallback: bool = True,
    seed: int = 0,
    keep_columns: Sequence[str] = ("solution", "question", "group", "family", "difficulty"),
) -> list[dict[str, Any]]:
    """Preference pairs from sampled solutions labelled by a verifier: a correct solution chosen, an incorrect one
    rejected, for the same problem.

    Args:
        problems: Problem rows (with `prompt`, and the `keep_columns` they have).
        completions: Sampled completions per problem (strings or assistant message lists).
        rewards: Verifier reward per completion (1.0 correct, 0.0 incorrect, `None` unscored and ignored).
        max_pairs_per_problem: Most pairs per problem (drawn at random among correct x incorrect, without repeats).
        reference_fallback: When no sample of a problem is correct but some are incorrect, pair the incorrect ones
            with [`reference_completion`] (a small policy rarely solves a problem, and pairs are the reward model's
            only signal). Such pairs have `chosen_source="reference"`, the others `"policy"`.
        seed: Seed of the draws.
        keep_columns: Problem columns copied to each pair (when present).

    Returns:
        Rows with `prompt`, `chosen`, `rejected`, `chosen_source` and the kept columns. Identical completion texts
        count once.
    """
    if not len(problems) == len(completions) == len(rewards):
        raise ValueError(
            f"Got {len(problems)} problems, {len(completions)} completion lists and {len(rewards)} reward lists."
        )
    pairs = []
    for index, (problem, samples, scores) in enumerate(zip(problems, completions, rewards, strict=True)):
        if len(samples) != len(scores):
            raise ValueError(f"Problem {index}: {len(samples)} completions but {len(scores)} rewards.")
        correct, incorrect, seen = [], [], set()
        for completion, score in zip(samples, scores, strict=True):
            text = _text_of(completion)
            if score is None or (isinstance(score, float) and math.isnan(score)) or text in seen:
                continue
            seen.add(text)
            (correct if score > 0.5 else incorrect).append(completion)
        source = "policy"
        if not correct and incorrect and reference_fallback:
            conversational = not isinstance(incorrect[0], str)
            correct, source = [reference_completion(str(problem["solution"]), conversational)], "reference"
        if not correct or not incorrect:
            continue
        rng = np.random.default_rng([seed, index])
        combos = [(i, j) for i in range(len(correct)) for j in range(len(incorrect))]
        order = rng.permutation(len(combos))[:max_pairs_per_problem]
        for k in order:
            i, j = combos[int(k)]
            row = {
                "prompt": problem["prompt"],
                "chosen": correct[i],
                "rejected": incorrect[j],
                "chosen_source": source,
            }
            row.update({c: problem[c] for c in keep_columns if c in problem})
            pairs.append(row)
    return pairs


def load_preferences(path: str | os.PathLike, split: str = "train"):
    """Preference pairs saved by `trl-icrm build-math-preferences` (`save_to_disk` folder; a `DatasetDict`'s
    `split`)."""
    from datasets import DatasetDict, load_from_disk

    data = load_from_disk(str(path))
    return data[split] if isinstance(data, DatasetDict) else data


# Demonstrations
def add_demonstrations(
    dataset,
    preferences,
    num_demonstrations: int,
    group_column: str = "group",
    key_column: str = "question",
    seed: int = 0,
    column: str = "demonstrations",
):
    """`dataset` (problems) with a `demonstrations` column: for each row, up to `num_demonstrations` pairs of
    `preferences` from the row's group, never of the row's own problem (same `key_column`).

    Rows whose group has no other pairs get an empty list (a warning counts them); score those zero-shot with
    `ICRMReward(..., allow_zero_shot=True)`.
    """
    bank = DemonstrationBank.from_rows(preferences, group_column, key_column)
    demonstrations = [
        bank.draw(
            str(row[group_column]), num_demonstrations, seeded_rng(seed, row[key_column]), exclude=row[key_column]
        )
        for row in dataset
    ]
    missing = sum(not demos for demos in demonstrations)
    if missing and num_demonstrations > 0:
        logger.warning(
            "%d of %d prompts have no demonstrations (their group has no other preference pairs).",
            missing,
            len(demonstrations),
        )
    if column in dataset.column_names:
        dataset = dataset.remove_columns(column)
    return dataset.add_column(column, demonstrations)


__all__ = [
    "DEFAULT_PREFERENCES_DIR",
    "GROUP_BY_CHOICES",
    "PLAIN_FAMILY",
    "add_demonstrations",
    "add_group_column",
    "build_preference_pairs",
    "group_of",
    "load_math_problems",
    "load_preferences",
    "make_math_problems",
    "plain_question",
    "reference_completion",
]
