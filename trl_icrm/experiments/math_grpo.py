# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""The math GRPO experiment (`trl-icrm grpo`, `recipes/grpo_math.py`): GRPO on math problems with the math-verify
reward, a BT reward model or ICRM steered per prompt by demonstrations of the prompt's problem group.

Its data (problems with a group, preference pairs, demonstration columns) is built by
`trl_icrm.data.math_preferences`; its report (table and plot of the rewards' held-out accuracy) is
`trl_icrm.experiments.math_grpo_report`. This module holds the run:

- rewards: [`grpo_reward_funcs`] (the reward of a kind, the verifier beside it with weight 0, and ICRM's
  `demonstrations` column); [`how_to_make_reward_model`] when a reward model is missing;
- evaluation: [`greedy_accuracy`] (held-out accuracy of greedy generation under math-verify) and
  [`HeldOutAccuracyCallback`], which evaluates before, every `eval_every` steps of, and after training;
- the run: [`run_math_grpo`] (problems, rewards, `trl.GRPOTrainer`, training) and [`grpo_results`].

Example:

```python
>>> from trl_icrm.experiments.math_grpo import how_to_make_reward_model
>>> print(how_to_make_reward_model("bt").splitlines()[0])
The 'bt' reward needs a trained reward model (no folder at 'outputs/math-bt'). Make one with:

```
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable
from typing import Any

from transformers import Trainer, TrainerCallback

from ..data.math_preferences import DEFAULT_PREFERENCES_DIR, add_demonstrations, load_math_problems, load_preferences
from ..rewards.math_verify import MathVerifyReward
from ..utils.generation import generate_greedy


logger = logging.getLogger(__name__)

DEFAULT_REWARD_MODEL_DIRS = {
    "icrm": "outputs/math-icrm",
    "bt": "outputs/math-bt",
    "head_ensemble": "outputs/math-head-ensemble",
    "lora_ensemble": "outputs/math-lora-ensemble",
}
"""Where the recipe's reward models are saved by default."""


class MissingRewardModelError(FileNotFoundError):
    """A reward model (or the preference pairs of its demonstrations) that the run needs is missing; the message says
    how to make it ([`how_to_make_reward_model`])."""


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


def how_to_make_reward_model(kind: str, path: str | None = None) -> str:
    """The exact commands that make a reward model for `--reward icrm|bt`."""
    path = path or DEFAULT_REWARD_MODEL_DIRS[kind]
    return (
        f"The {kind!r} reward needs a trained reward model (no folder at {path!r}). Make one with:\n\n"
        f"    python recipes/build_math_preferences.py --output_dir {DEFAULT_PREFERENCES_DIR}\n"
        f"    python recipes/train_reward_model.py --method {kind} --dataset_name {DEFAULT_PREFERENCES_DIR} "
        f"--output_dir {path}\n\n"
        f"then run again with --reward {kind} --reward_model_name_or_path {path} "
        f"--preferences_path {DEFAULT_PREFERENCES_DIR}"
    )


def grpo_reward_funcs(kind: str, script_args: Any, training_args: Any, train_dataset) -> tuple[list, Any]:
    """(reward functions, training dataset): the reward of `kind` (`"verifier"` or a registered reward-model kind)
    with `script_args.penalty` / `penalty_coef` given at construction, the verifier with weight 0 beside a reward model
    where the prompts have reference answers (`log_verifier`), and for ICRM the prompts' demonstrations
    ([`icrm_demonstrations`]).

    Raises:
        PromptDatasetError: The verifier reward without reference answers, or ICRM without demonstrations.
        MissingRewardModelError: ICRM without its preference pairs.
    """
    from ..data.prompts import require_answers
    from ..rewards import load_reward

    verifier = load_reward("verifier")
    if kind == "verifier":
        require_answers(train_dataset, "The verifier reward")
        return [verifier], train_dataset
    path = script_args.reward_model_name_or_path
    penalty = {"penalty": script_args.penalty, "penalty_coef": script_args.penalty_coef}
    if kind == "icrm":
        train_dataset, column = icrm_demonstrations(script_args, training_args.seed, train_dataset)
        reward = load_reward(path, kind="icrm", allow_zero_shot=True, demonstrations_column=column, **penalty)
    else:
        reward = load_reward(path, kind=kind, name=kind, **penalty)
    if not script_args.log_verifier or "solution" not in train_dataset.column_names:
        return [reward], train_dataset
    if training_args.reward_weights is None:
        training_args.reward_weights = [1.0, 0.0]
    return [reward, verifier], train_dataset


def read_preference_pairs(path: str | os.PathLike):
    """The preference pairs of ICRM demonstrations: a folder saved with `save_to_disk` or a data file, in the
    explicit-prompt format (`trl_icrm.data.preferences`)."""
    from ..data.loading import load_split
    from ..data.preferences import standardize_preferences

    return standardize_preferences(load_split(path))


def icrm_demonstrations(script_args: Any, seed: int, train_dataset) -> tuple[Any, str]:
    """(training dataset, its demonstrations column) for the ICRM reward: the prompts' own
    `script_args.demonstrations_column`, or else one drawn ([`add_demonstrations`]) from the preference pairs of
    `script_args.preferences_path` that share the prompt's `script_args.bank_key` value, never of the prompt itself
    (the same `question`, or else the same `prompt`).

    Raises:
        PromptDatasetError: The prompts have neither column, or the pairs lack the key column.
        MissingRewardModelError: No preference pairs at `preferences_path`.
    """
    from ..data.prompts import PromptDatasetError

    column, key, columns = script_args.demonstrations_column, script_args.bank_key, train_dataset.column_names
    if column in columns:
        return train_dataset, column
    if key not in columns:
        raise PromptDatasetError(
            f"The ICRM reward steers each prompt by demonstrations: the prompts need a {column!r} column "
            f"(--demonstrations_column) of {{prompt, chosen, rejected}} pairs, or a {key!r} column (--bank_key) that "
            f"keys the preference pairs of --preferences_path; their columns are {sorted(columns)}."
        )
    if not os.path.exists(script_args.preferences_path):
        raise MissingRewardModelError(
            f"The ICRM reward draws each prompt's demonstrations from preference pairs, and there are none at "
            f"--preferences_path {script_args.preferences_path!r}. Give the pairs the model was trained on "
            f"(e.g. `trl-icrm build-math-preferences --output_dir {script_args.preferences_path}`)."
        )
    preferences = read_preference_pairs(script_args.preferences_path)
    if key not in preferences.column_names:
        raise PromptDatasetError(
            f"The preference pairs at {script_args.preferences_path!r} have no {key!r} column (--bank_key) to match "
            f"the prompts with: their columns are {sorted(preferences.column_names)}."
        )
    own = "question" if "question" in columns and "question" in preferences.column_names else "prompt"
    num = script_args.num_demonstrations
    return add_demonstrations(train_dataset, preferences, num, key, own, seed=seed, column=column), column


def load_grpo_problems(script_args: Any, seed: int) -> dict[str, Any]:
    """The run's prompts, `{"train": ..., "test": ... or None}`, as `script_args` asks: the built-in problems, or the
    first rows of `--dataset_name`'s splits (`trl_icrm.data.prompts`); built-in, GSM8K and MATH-500 problems get a
    `group` column (`--group_by`)."""
    from ..data.math_preferences import add_group_column
    from ..data.prompts import MATH_SHAPES, first_rows, load_prompt_splits

    args = script_args
    if not args.dataset_name:
        sizes = {"num_train": args.num_train_problems, "num_test": args.num_test_problems}
        builtin = {"difficulties": args.difficulties, "plain_fraction": args.plain_fraction}
        return dict(load_math_problems(**sizes, **builtin, group_by=args.group_by, seed=seed))
    source = (args.dataset_name, args.dataset_config, args.dataset_train_split, args.dataset_test_split)
    train, test = load_prompt_splits(*source, prompt_column=args.prompt_column, answer_column=args.answer_column)
    problems = {"train": first_rows(train, args.num_train_problems), "test": None}
    if test is not None:
        problems["test"] = first_rows(test, args.num_test_problems)
    math_shaped = any(set(needed) <= set(train.column_names) for needed in MATH_SHAPES.values())
    if math_shaped and "group" not in train.column_names:
        for name, split in problems.items():
            problems[name] = add_group_column(split, args.group_by) if split is not None else None
    return problems


def heldout_callback(script_args: Any, training_args: Any, test) -> tuple[HeldOutAccuracyCallback | None, str]:
    """The held-out accuracy callback of the run, or (None, why not): held-out accuracy needs a test split with
    reference answers."""
    if test is None or len(test) == 0:
        return None, "the data set has no test split (--dataset_test_split)"
    if "solution" not in test.column_names:
        return None, "the test split has no reference answers (--answer_column)"
    callback = HeldOutAccuracyCallback(
        test,
        eval_every=script_args.eval_every,
        max_new_tokens=script_args.eval_max_new_tokens or training_args.max_completion_length,
        batch_size=script_args.eval_batch_size,
    )
    return callback, ""


def run_math_grpo(kind: str, script_args: Any, training_args: Any, model_args: Any) -> tuple[dict[str, Any], Any]:
    """Train the policy with GRPO under the reward of `kind`, held-out accuracy evaluated by
    [`HeldOutAccuracyCallback`], and save it to `training_args.output_dir` (every rank: a collective under ZeRO-3).

    Returns:
        `(results, trainer)`: the run's results ([`grpo_results`]) and the trained `trl.GRPOTrainer`.
    """
    from trl import GRPOTrainer, get_peft_config

    from ..utils.default_model import resolve_model_name_or_path
    from ..utils.io import resume_checkpoint

    problems = load_grpo_problems(script_args, training_args.seed)
    reward_funcs, train_dataset = grpo_reward_funcs(kind, script_args, training_args, problems["train"])
    heldout, skipped = heldout_callback(script_args, training_args, problems["test"])
    if heldout is None:
        logger.warning("No held-out accuracy: %s.", skipped)
    trainer = GRPOTrainer(
        model=resolve_model_name_or_path(model_args.model_name_or_path),
        reward_funcs=reward_funcs,
        args=training_args,
        train_dataset=train_dataset,
        peft_config=get_peft_config(model_args),
        callbacks=[heldout] if heldout is not None else None,
    )
    if heldout is not None:
        heldout.trainer = trainer
    trainer.train(resume_from_checkpoint=resume_checkpoint(training_args.resume_from_checkpoint))
    trainer.save_model(training_args.output_dir)
    num_test = len(heldout.problems) if heldout is not None else 0
    sizes = {"num_train_problems": len(train_dataset), "num_test_problems": num_test}
    results = grpo_results(kind, script_args, training_args, model_args, trainer, heldout, sizes)
    if heldout is None:
        results["heldout_accuracy"]["skipped"] = skipped
    return results, trainer


def grpo_results(kind, script_args, training_args, model_args, trainer, heldout, sizes: dict[str, int]) -> dict:
    """The results written by `trl-icrm grpo`: the reward, the policy, held-out accuracy before, after and during
    training (none without a `heldout` callback), and TRL's logs."""
    history = [dict(record.items()) for record in heldout.history] if heldout is not None else []
    return {
        "reward": kind,
        "reward_model": script_args.reward_model_name_or_path,
        "policy": model_args.model_name_or_path,
        "world_size": training_args.world_size,
        **sizes,
        "heldout_accuracy": {
            "before": history[0]["accuracy"] if history else None,
            "after": history[-1]["accuracy"] if history else None,
            "history": history,
        },
        "log_history": trainer.state.log_history,
        "script_args": vars(script_args),
    }


__all__ = [
    "DEFAULT_PREFERENCES_DIR",
    "DEFAULT_REWARD_MODEL_DIRS",
    "HeldOutAccuracyCallback",
    "MissingRewardModelError",
    "generate_greedy",
    "greedy_accuracy",
    "grpo_results",
    "grpo_reward_funcs",
    "heldout_callback",
    "how_to_make_reward_model",
    "icrm_demonstrations",
    "load_grpo_problems",
    "load_preferences",
    "read_preference_pairs",
    "run_math_grpo",
]
