# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""Shared logic of the math-verification recipe (`recipes/build_math_preferences.py`, `recipes/train_reward_model.py`,
`recipes/grpo_math.py`, `recipes/compare_rewards.py`).

The recipe compares three rewards for GRPO on math problems with verifiable answers: the math-verify correctness
reward itself, a conventional Bradley-Terry (BT) reward model, and an ICRM reward model steered per prompt by
demonstrations of the prompt's problem group. This module holds the pure logic, so the scripts stay thin:

- problems: [`load_math_problems`] (built-in generator, optionally with plain arithmetic such as "What is 23 + 19?",
  or a hub dataset with GSM8K's schema) with a `group` column ([`group_of`]);
- preference data: [`build_preference_pairs`] turns sampled solutions labelled by the verifier into pairs (a correct
  solution chosen, an incorrect one rejected) that keep their group;
- demonstrations: [`add_demonstrations`] (with `trl_icrm.demonstrations.DemonstrationBank`) gives each GRPO prompt a `demonstrations` column
  of `{prompt, chosen, rejected}` pairs of its own group, never of the problem itself;
- evaluation: [`greedy_accuracy`] (held-out accuracy of greedy generation under math-verify) and
  [`HeldOutAccuracyCallback`], which evaluates before, every `eval_every` steps of, and after training;
- reporting: [`comparison_table`] and [`plot_accuracy_curves`] for the comparison of rewards.

Example:

```python
>>> from trl_icrm.experiments.math_grpo import build_preference_pairs
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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from transformers import Trainer, TrainerCallback

from ..data.math_problems import make_arithmetic_problems, make_prompt
from ..demonstrations import DemonstrationBank, seeded_rng
from ..rewards.math_verify import MathVerifyReward
from ..utils.generation import generate_greedy
from ..utils.io import new_figure, save_figure, write_json


logger = logging.getLogger(__name__)

GROUP_BY_CHOICES = ("family", "difficulty", "family_difficulty", "none")
"""How problems are grouped for ICRM demonstrations (the `group` column)."""

DEFAULT_PREFERENCES_DIR = "outputs/math-preferences"


@dataclass
class MathProblemArguments:
    """Which math problems a recipe uses: the built-in generator's settings or a dataset with GSM8K's schema. Shared
    by `recipes/build_math_preferences.py` and `recipes/grpo_math.py`."""

    dataset_name: str | None = field(
        default=None, metadata={"help": "Hub id / local path of a dataset with GSM8K's schema (default: built-in)."}
    )
    dataset_config: str | None = field(default=None, metadata={"help": "Config name of `dataset_name`."})
    difficulties: list[int] = field(
        default_factory=lambda: [1], metadata={"help": "Difficulties (arithmetic steps) of built-in problems."}
    )
    plain_fraction: float = field(
        default=0.5, metadata={"help": "Share of built-in problems asked as plain arithmetic ('What is 23 + 19?')."}
    )
    group_by: str = field(
        default="family",
        metadata={
            "help": "Group of a problem (its ICRM demonstrations come from the same group).",
            "choices": list(GROUP_BY_CHOICES),
        },
    )


DEFAULT_REWARD_MODEL_DIRS = {"icrm": "outputs/math-icrm", "bt": "outputs/math-bt"}
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
        from ..data.math_problems import load_gsm8k_like

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
    """Preference pairs saved by `recipes/build_math_preferences.py` (`save_to_disk` folder; a `DatasetDict`'s
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


# Evaluation
def greedy_accuracy(
    model,
    tokenizer,
    problems,
    max_new_tokens: int = 128,
    batch_size: int = 16,
    verifier: Callable | None = None,
) -> dict[str, Any]:
    """Held-out accuracy of greedy generation: the share of `problems` (rows with `prompt` and `solution`) whose
    greedy completion the verifier (default: [`~trl_icrm.rewards.math_verify.MathVerifyReward`]) scores correct.

    Returns:
        `{"accuracy", "num_correct", "num_problems"}` (accuracy is NaN for no problems).
    """
    verifier = verifier or MathVerifyReward(log_metrics=False)
    rows = list(problems)
    training = model.training
    model.eval()
    try:
        completions = generate_greedy(model, tokenizer, [r["prompt"] for r in rows], max_new_tokens, batch_size)
    finally:
        model.train(training)
    scores = verifier(completions=completions, solution=[r["solution"] for r in rows]) if rows else []
    correct = sum(1 for s in scores if s is not None and s > 0.5)
    return {
        "accuracy": correct / len(rows) if rows else math.nan,
        "num_correct": correct,
        "num_problems": len(rows),
    }


class HeldOutAccuracyCallback(TrainerCallback):
    """Evaluates held-out greedy accuracy ([`greedy_accuracy`]) before training, every `eval_every` steps
    (0: never in between) and after training, and records it in `history` and, as `heldout/accuracy`, in the
    trainer's logs (which reach `report_to`; without a trainer, in `state.log_history`).

    With a `trainer`, generation runs on the unwrapped model (`trl.models.utils.unwrap_model_for_generation`, which
    gathers ZeRO-3 parameters on every rank), and each process evaluates its share of the problems; the counts are
    summed over processes. Every process must then reach the callback, as the trainer guarantees.

    Args:
        problems: Held-out rows with `prompt` and `solution`.
        tokenizer: The policy's tokenizer (default: the trainer's processing class).
        eval_every: Steps between evaluations during training (0: only before and after).
        max_new_tokens: Tokens per greedy completion.
        batch_size: Prompts per `generate` call.
        trainer: The trainer (set it after building the trainer: `callback.trainer = trainer`).
    """

    def __init__(
        self,
        problems,
        tokenizer=None,
        eval_every: int = 0,
        max_new_tokens: int = 128,
        batch_size: int = 16,
        trainer=None,
        verifier: Callable | None = None,
    ):
        self.problems = list(problems)
        self.tokenizer = tokenizer
        self.eval_every = eval_every
        self.max_new_tokens = max_new_tokens
        self.batch_size = batch_size
        self.trainer = trainer
        self.verifier = verifier or MathVerifyReward(log_metrics=False)
        self.history: list[dict[str, Any]] = []

    def evaluate(self, model, step: int, state=None) -> dict[str, Any]:
        """Evaluate now and record the result for `step`."""
        trainer = self.trainer
        tokenizer = self.tokenizer or getattr(trainer, "processing_class", None)
        if trainer is None:
            result = greedy_accuracy(
                model, tokenizer, self.problems, self.max_new_tokens, self.batch_size, self.verifier
            )
        else:
            from accelerate.utils import gather_object

            from .._trl_compat import unwrap_model_for_generation

            accelerator = trainer.accelerator
            shard = self.problems[accelerator.process_index :: accelerator.num_processes]
            with unwrap_model_for_generation(
                trainer.model_wrapped,
                accelerator,
                gradient_checkpointing_kwargs=getattr(trainer.args, "gradient_checkpointing_kwargs", None),
            ) as unwrapped:
                local = greedy_accuracy(
                    unwrapped, tokenizer, shard, self.max_new_tokens, self.batch_size, self.verifier
                )
            counts = gather_object([(local["num_correct"], local["num_problems"])])
            correct, total = sum(c for c, _ in counts), sum(n for _, n in counts)
            result = {
                "accuracy": correct / total if total else math.nan,
                "num_correct": correct,
                "num_problems": total,
            }
        record = {"step": int(step), **result}
        self.history.append(record)
        if trainer is not None:
            # Through `transformers.Trainer.log`, so it reaches `report_to` (W&B, TensorBoard, ...); not through
            # GRPOTrainer.log, which would also flush the training metrics it is accumulating for its next log.
            Trainer.log(trainer, {"heldout/accuracy": result["accuracy"]})
        elif state is not None:
            state.log_history.append({"step": int(step), "heldout/accuracy": result["accuracy"]})
        logger.info("Held-out accuracy at step %d: %.4f", step, result["accuracy"])
        return record

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        self.evaluate(model, state.global_step, state)

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if self.eval_every > 0 and state.global_step % self.eval_every == 0 and state.global_step < state.max_steps:
            self.evaluate(model, state.global_step, state)

    def on_train_end(self, args, state, control, model=None, **kwargs):
        if not self.history or self.history[-1]["step"] != state.global_step:
            self.evaluate(model, state.global_step, state)


# Reward models
def how_to_make_reward_model(kind: str, path: str | None = None) -> str:
    """The exact commands that make a reward model for `--reward icrm|bt`."""
    path = path or DEFAULT_REWARD_MODEL_DIRS[kind]
    return (
        f"The {kind!r} reward needs a trained reward model (no folder at {path!r}). Make one with:\n\n"
        f"    python recipes/build_math_preferences.py --output_dir {DEFAULT_PREFERENCES_DIR}\n"
        f"    python recipes/train_reward_model.py --method {kind} --dataset_path {DEFAULT_PREFERENCES_DIR} "
        f"--output_dir {path}\n\n"
        f"then run again with --reward {kind} --reward_model_name_or_path {path} "
        f"--preferences_path {DEFAULT_PREFERENCES_DIR}"
    )


# Reporting
def _fmt(value: Any) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.3f}"


def comparison_table(results: Mapping[str, Mapping[str, Any]]) -> str:
    """A markdown table of held-out accuracy before and after training (and the best), one row per reward.

    Args:
        results: `{reward name: results}`, each as written by `recipes/grpo_math.py` (with `heldout_accuracy`:
            `{"before", "after", "history": [{"step", "accuracy", ...}]}`).
    """
    lines = [
        "| reward | steps | held-out accuracy before | after | best during training |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, result in results.items():
        heldout = result["heldout_accuracy"]
        history = heldout.get("history") or []
        accuracies = [h["accuracy"] for h in history if not math.isnan(h["accuracy"])]
        steps = history[-1]["step"] if history else "n/a"
        best = max(accuracies) if accuracies else None
        lines.append(
            f"| {name} | {steps} | {_fmt(heldout.get('before'))} | {_fmt(heldout.get('after'))} | {_fmt(best)} |"
        )
    return "\n".join(lines) + "\n"


def plot_accuracy_curves(results: Mapping[str, Mapping[str, Any]], path: str | os.PathLike, title: str | None = None):
    """A PNG of held-out accuracy vs training step, one line per reward (matplotlib, Agg backend)."""
    figure, axis = new_figure((6, 4))
    for name, result in results.items():
        history = result["heldout_accuracy"].get("history") or []
        axis.plot([h["step"] for h in history], [h["accuracy"] for h in history], marker="o", label=name)
    axis.set_xlabel("GRPO step")
    axis.set_ylabel("held-out accuracy (greedy, math-verify)")
    axis.set_ylim(bottom=0)
    axis.set_title(title or "Held-out accuracy by reward")
    axis.grid(alpha=0.3)
    axis.legend()
    return save_figure(figure, path)


__all__ = [
    "DEFAULT_PREFERENCES_DIR",
    "DEFAULT_REWARD_MODEL_DIRS",
    "GROUP_BY_CHOICES",
    "HeldOutAccuracyCallback",
    "add_demonstrations",
    "add_group_column",
    "build_preference_pairs",
    "comparison_table",
    "generate_greedy",
    "greedy_accuracy",
    "group_of",
    "how_to_make_reward_model",
    "load_math_problems",
    "load_preferences",
    "make_math_problems",
    "plain_question",
    "plot_accuracy_curves",
    "reference_completion",
    "write_json",
]
