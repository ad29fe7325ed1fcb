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
    (`log_verifier`), and for ICRM the `demonstrations` column drawn from `script_args.preferences_path`.

    Raises:
        MissingRewardModelError: ICRM without its preference pairs.
    """
    from ..rewards import load_reward

    verifier = load_reward("verifier")
    if kind == "verifier":
        return [verifier], train_dataset
    path = script_args.reward_model_name_or_path
    penalty = {"penalty": script_args.penalty, "penalty_coef": script_args.penalty_coef}
    if kind == "icrm":
        if not os.path.isdir(script_args.preferences_path):
            raise MissingRewardModelError(
                f"The ICRM reward draws each prompt's demonstrations from preference pairs, and there are none at "
                f"--preferences_path {script_args.preferences_path!r}. Give the pairs the model was trained on "
                f"(e.g. `trl-icrm build-math-preferences --output_dir {script_args.preferences_path}`)."
            )
        preferences = load_preferences(script_args.preferences_path)
        train_dataset = add_demonstrations(
            train_dataset, preferences, script_args.num_demonstrations, seed=training_args.seed
        )
        reward = load_reward(path, kind="icrm", allow_zero_shot=True, **penalty)
    else:
        reward = load_reward(path, kind=kind, name=kind, **penalty)
    if not script_args.log_verifier:
        return [reward], train_dataset
    if training_args.reward_weights is None:
        training_args.reward_weights = [1.0, 0.0]
    return [reward, verifier], train_dataset


def load_grpo_problems(script_args: Any, seed: int):
    """The run's problems (`"train"`, `"test"`) with their `group` column, as `script_args` asks."""
    args = script_args
    source = {"dataset_name": args.dataset_name, "dataset_config": args.dataset_config}
    splits = {"train_split": args.dataset_train_split, "test_split": args.dataset_test_split}
    sizes = {"num_train": args.num_train_problems, "num_test": args.num_test_problems}
    builtin = {"difficulties": args.difficulties, "plain_fraction": args.plain_fraction}
    return load_math_problems(**source, **splits, **sizes, **builtin, group_by=args.group_by, seed=seed)


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
    heldout = HeldOutAccuracyCallback(
        problems["test"],
        eval_every=script_args.eval_every,
        max_new_tokens=script_args.eval_max_new_tokens or training_args.max_completion_length,
        batch_size=script_args.eval_batch_size,
    )
    trainer = GRPOTrainer(
        model=resolve_model_name_or_path(model_args.model_name_or_path),
        reward_funcs=reward_funcs,
        args=training_args,
        train_dataset=train_dataset,
        peft_config=get_peft_config(model_args),
        callbacks=[heldout],
    )
    heldout.trainer = trainer
    trainer.train(resume_from_checkpoint=resume_checkpoint(training_args.resume_from_checkpoint))
    trainer.save_model(training_args.output_dir)
    sizes = {"num_train_problems": len(train_dataset), "num_test_problems": len(problems["test"])}
    return grpo_results(kind, script_args, training_args, model_args, trainer, heldout, sizes), trainer


def grpo_results(kind, script_args, training_args, model_args, trainer, heldout, sizes: dict[str, int]) -> dict:
    """The results written by `trl-icrm grpo`: the reward, the policy, held-out accuracy before, after and during
    training, and TRL's logs."""
    history = [dict(record.items()) for record in heldout.history]
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
    "how_to_make_reward_model",
    "load_grpo_problems",
    "load_preferences",
    "run_math_grpo",
]
